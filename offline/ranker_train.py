"""Training the LightGBM LambdaRank ranker, and backfilled groups from history.

One query group per impression (``group_ids``).  The validation set is the
*latest* ``valid_fraction`` of groups by group time (a group's time is the
latest time among its rows), so the model is judged on the future it will
serve; training stops early when validation NDCG@10 has not improved for
``early_stopping_rounds`` rounds.  NDCG uses LightGBM's definition: gain
``2**label - 1``, discount ``1 / log2(rank + 1)``, and a group without any
relevant row counts as 1.  :func:`offline.ranking_metrics.ndcg_at_k` recomputes it in numpy as an
independent check.

Times are numbers (e.g. unix seconds); labels are graded non-negative integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import lightgbm as lgb
import numpy as np

from offline.group_split import time_split
from offline.ranking_metrics import EVAL_AT, ndcg_report

STOP_METRIC = "ndcg@10"


@dataclass(frozen=True)
class LambdaRankParams:
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 20
    feature_fraction: float = 1.0
    num_boost_round: int = 500
    early_stopping_rounds: int = 30
    valid_fraction: float = 0.2
    num_threads: int = 2
    seed: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)  # passed to LightGBM as is

    def lightgbm_params(self) -> dict[str, Any]:
        return {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": list(EVAL_AT),
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "num_threads": self.num_threads,
            "seed": self.seed,
            "deterministic": True,
            "verbose": -1,
            **dict(self.extra),
        }


@dataclass(frozen=True, eq=False)
class TrainedRanker:
    booster: lgb.Booster
    feature_names: tuple[str, ...]
    best_iteration: int
    metrics: dict[str, float]  # LightGBM's validation ndcg@5/@10/@20 at the best iteration
    check_metrics: dict[str, float]  # the same, recomputed with ndcg_at_k
    curves: dict[str, dict[str, list[float]]]  # {"train"|"valid": {"ndcg@10": [per round]}}
    feature_importance: dict[str, dict[str, float]]  # {"gain"|"split": {feature: value}}
    valid_rows: np.ndarray  # row indices (into the inputs) of the validation set
    n_train_groups: int
    n_valid_groups: int
    split_time: float  # time of the earliest validation group

    def model_text(self) -> str:
        """The LightGBM text model, truncated at the best iteration."""
        return str(self.booster.model_to_string(num_iteration=self.best_iteration))


class _StopOnMetric:
    """Early stopping on one validation metric only (LightGBM's own watches all of them)."""

    order = 30  # after record_evaluation (20), so curves include the last round

    def __init__(self, data_name: str, metric: str, rounds: int) -> None:
        self.data_name, self.metric, self.rounds = data_name, metric, rounds
        self.best = -math.inf
        self.best_iter = 0
        self.best_results: list[Any] = []

    def __call__(self, env: Any) -> None:
        for item in env.evaluation_result_list:
            if item[0] == self.data_name and item[1] == self.metric:
                if item[2] > self.best:
                    self.best, self.best_iter = item[2], env.iteration
                    self.best_results = list(env.evaluation_result_list)
                elif env.iteration - self.best_iter >= self.rounds:
                    raise lgb.callback.EarlyStopException(self.best_iter, self.best_results)


def _validate(X: np.ndarray, y: np.ndarray, group_ids: np.ndarray, times: np.ndarray, names: Sequence[str]) -> None:
    n = X.shape[0]
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError(f"X has shape {X.shape}; expected (rows, {len(names)}) to match feature_names")
    if len(set(names)) != len(names):
        raise ValueError(f"feature_names contains duplicates: {list(names)}")
    for what, arr in (("y", y), ("group_ids", group_ids), ("times", times)):
        if arr.shape != (n,):
            raise ValueError(f"{what} has shape {arr.shape}; expected ({n},)")
    if n and (y.min() < 0 or not np.all(y == np.round(y)) or y.max() > 30):
        raise ValueError("labels must be integers in [0, 30] (graded relevance) for LambdaRank")


def train_lambdarank(
    X: np.ndarray,
    y: np.ndarray,
    group_ids: np.ndarray,
    times: np.ndarray,
    feature_names: Sequence[str],
    params: LambdaRankParams | None = None,
    valid_eligible: np.ndarray | None = None,
) -> TrainedRanker:
    """Fit LambdaRank with a time-based validation split and early stopping on NDCG@10 (validation only
    on ``valid_eligible`` groups when given: see :func:`time_split`)."""
    p = params or LambdaRankParams()
    X = np.asarray(X, dtype=np.float64)
    y, group_ids, times = np.asarray(y), np.asarray(group_ids), np.asarray(times, dtype=np.float64)
    names = tuple(feature_names)
    _validate(X, y, group_ids, times, names)
    split = time_split(group_ids, times, p.valid_fraction, valid_eligible)
    tr, va = split.train_rows, split.valid_rows
    y_int = y.astype(np.int64)
    train_set = lgb.Dataset(X[tr], y_int[tr], group=split.train_sizes, feature_name=list(names), free_raw_data=True)
    valid_set = lgb.Dataset(X[va], y_int[va], group=split.valid_sizes, reference=train_set)
    curves: dict[str, Any] = {}
    stopper = _StopOnMetric("valid", STOP_METRIC, p.early_stopping_rounds)
    booster = lgb.train(
        p.lightgbm_params(),
        train_set,
        num_boost_round=p.num_boost_round,
        valid_sets=[train_set, valid_set],
        valid_names=["train", "valid"],
        callbacks=[lgb.record_evaluation(curves), stopper],
    )
    best = stopper.best_iter + 1  # 1-based count of rounds kept
    valid_curves = curves["valid"]
    metrics = {name: float(valid_curves[name][best - 1]) for name in valid_curves}
    valid_scores = np.asarray(booster.predict(X[va], num_iteration=best, num_threads=p.num_threads), dtype=float)
    importance = {
        kind: dict(zip(names, map(float, booster.feature_importance(kind, iteration=best))))
        for kind in ("gain", "split")
    }
    return TrainedRanker(
        booster=booster,
        feature_names=names,
        best_iteration=best,
        metrics=metrics,
        check_metrics=ndcg_report(valid_scores, y[va], group_ids[va]),
        curves={ds: {m: [float(v) for v in vals] for m, vals in per.items()} for ds, per in curves.items()},
        feature_importance=importance,
        valid_rows=va,
        n_train_groups=int(split.train_sizes.size),
        n_valid_groups=int(split.valid_sizes.size),
        split_time=split.split_time,
    )


@dataclass(frozen=True, eq=False)
class BackfillGroups:
    """Rows of backfilled query groups: each positive first, then its sampled negatives."""

    group_ids: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    times: np.ndarray  # the positive's time, for point-in-time features of every row of the group
    labels: np.ndarray  # the positive's graded label; 0 for sampled negatives


def backfill_groups(
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    times: np.ndarray,
    labels: np.ndarray,
    candidate_items: np.ndarray,
    n_negatives: int,
    seed: int,
    group_id_start: int = 0,
) -> BackfillGroups:
    """Query groups built from history, for when real impressions are too few.

    Every interaction with ``label > 0`` becomes one group: that row plus up to
    ``n_negatives`` distinct items drawn uniformly (``numpy`` RNG seeded with
    ``seed``) from ``candidate_items``, excluding every item the user has a
    positive label for anywhere in the history (a later positive is not a
    negative).  Groups get ids ``group_id_start, group_id_start + 1, ...`` in
    the order of the positives; use a start above the real impression ids.
    The caller computes features for each (user, item, time) row point-in-time.
    """
    users, items = np.asarray(user_ids), np.asarray(item_ids)
    labels, times = np.asarray(labels), np.asarray(times)
    pos = np.flatnonzero(labels > 0)
    all_items, item_code = np.unique(np.concatenate([items, np.asarray(candidate_items)]), return_inverse=True)
    pool = np.unique(item_code[items.size :])
    _, user_code = np.unique(users, return_inverse=True)
    m = np.int64(all_items.size)
    excluded = np.unique(user_code[pos].astype(np.int64) * m + item_code[pos])
    rng = np.random.default_rng(seed)
    n_pos, n_neg = pos.size, max(0, int(n_negatives))
    negs = np.full((n_pos, n_neg), -1, dtype=np.int64)
    if n_pos and n_neg and pool.size:
        draws = pool[rng.integers(0, pool.size, size=(n_pos, 2 * n_neg + 4))]
        pair = user_code[pos, None].astype(np.int64) * m + draws
        bad = np.isin(pair, excluded)
        order = np.argsort(draws, axis=1, kind="stable")
        ordered = np.take_along_axis(draws, order, axis=1)
        dup_sorted = np.zeros_like(bad)
        dup_sorted[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
        dup = np.zeros_like(bad)
        np.put_along_axis(dup, order, dup_sorted, axis=1)  # later repeats of an item in the row
        ok = ~bad & ~dup
        keep = ok & (np.cumsum(ok, axis=1) <= n_neg)
        short = keep.sum(axis=1) < n_neg
        full_rows = np.flatnonzero(~short)
        negs[full_rows] = draws[full_rows][keep[full_rows]].reshape(-1, n_neg)
        for r in np.flatnonzero(short):  # rare: the row drew too many excluded or repeated items
            mine = excluded[(excluded // m) == user_code[pos[r]]] % m
            allowed = np.setdiff1d(pool, mine)
            chosen = rng.permutation(allowed)[:n_neg]
            negs[r, : chosen.size] = chosen
    table = np.concatenate([item_code[pos, None].astype(np.int64), negs], axis=1)
    present = table >= 0
    per_group = np.repeat(np.arange(n_pos), n_neg + 1).reshape(n_pos, n_neg + 1)
    label_table = np.zeros(table.shape, dtype=labels.dtype)
    label_table[:, 0] = labels[pos]
    return BackfillGroups(
        group_ids=per_group[present] + group_id_start,
        user_ids=users[pos][per_group[present]],
        item_ids=all_items[table[present]],
        times=times[pos][per_group[present]],
        labels=label_table[present],
    )
