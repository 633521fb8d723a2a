"""Training the LightGBM LambdaRank ranker, and backfilled groups from history.

One query group per impression (``group_ids``).  The validation set is the
*latest* ``valid_fraction`` of groups by group time (a group's time is the
latest time among its rows), so the model is judged on the future it will
serve; training stops early when validation NDCG@10 has not improved for
``early_stopping_rounds`` rounds.  NDCG uses LightGBM's definition: gain
``2**label - 1``, discount ``1 / log2(rank + 1)``, and a group without any
relevant row counts as 1.  :func:`ndcg_at_k` recomputes it in numpy as an
independent check.

Times are numbers (e.g. unix seconds); labels are graded non-negative integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import lightgbm as lgb
import numpy as np

EVAL_AT = (5, 10, 20)
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


def ndcg_at_k(scores: np.ndarray, labels: np.ndarray, group_ids: np.ndarray, k: int) -> float:
    """Mean NDCG@k over groups (LightGBM's definition; groups without relevant rows count as 1)."""
    if np.asarray(scores).size == 0:
        return math.nan
    return float(np.mean(ndcg_per_group(scores, labels, group_ids, k)))


def ndcg_per_group(scores: np.ndarray, labels: np.ndarray, group_ids: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k of every group, in ascending group-id order (for paired comparisons of two orderings)."""
    scores, labels, group_ids = np.asarray(scores, float), np.asarray(labels, float), np.asarray(group_ids)
    if scores.size == 0:
        return np.zeros(0)
    order = np.lexsort((-scores, group_ids))  # by group, then score descending (stable)
    g, s_lab = group_ids[order], labels[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ends = np.r_[starts[1:], g.size]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    values = []
    for a, b in zip(starts, ends):
        got = s_lab[a:b][:k]
        ideal = np.sort(s_lab[a:b])[::-1][:k]
        idcg = float(((2.0**ideal - 1.0) * discounts[: ideal.size]).sum())
        dcg = float(((2.0**got - 1.0) * discounts[: got.size]).sum())
        values.append(1.0 if idcg <= 0.0 else dcg / idcg)
    return np.asarray(values, dtype=float)


def paired_difference(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired groups and its bootstrap 95% interval."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if d.size == 0:
        return math.nan, math.nan, math.nan
    means = d[np.random.default_rng(seed).integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(d.mean()), float(lo), float(hi)


def ndcg_report(scores: np.ndarray, labels: np.ndarray, group_ids: np.ndarray) -> dict[str, float]:
    return {f"ndcg@{k}": ndcg_at_k(scores, labels, group_ids, k) for k in EVAL_AT}


@dataclass(frozen=True)
class GroupSplit:
    train_rows: np.ndarray  # row indices, contiguous by group, groups in time order
    valid_rows: np.ndarray
    train_sizes: np.ndarray
    valid_sizes: np.ndarray
    split_time: float


def time_split(group_ids: np.ndarray, times: np.ndarray, valid_fraction: float,
               valid_eligible: np.ndarray | None = None) -> GroupSplit:
    """Order groups by time (ties by group id) and hold out the latest ``valid_fraction`` of them.

    ``valid_eligible`` (per row, constant within a group): only those groups are split; the others
    (e.g. impression groups, whose lists an earlier ranker chose) only ever train, and only when they
    are older than the earliest validation group, so nothing from the validation period trains."""
    if valid_eligible is not None:
        return _eligible_split(np.asarray(group_ids), np.asarray(times, np.float64), valid_fraction,
                               np.asarray(valid_eligible, bool))
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1); got {valid_fraction}")
    keys, inverse = np.unique(np.asarray(group_ids), return_inverse=True)
    if keys.size < 2:
        raise ValueError(f"need at least 2 query groups for a time-based split; got {keys.size}")
    group_time = np.full(keys.size, -np.inf)
    np.maximum.at(group_time, inverse, np.asarray(times, dtype=np.float64))
    rank_of_group = np.empty(keys.size, dtype=np.int64)
    rank_of_group[np.lexsort((np.arange(keys.size), group_time))] = np.arange(keys.size)
    row_rank = rank_of_group[inverse]
    rows = np.lexsort((np.arange(row_rank.size), row_rank))
    n_valid = min(keys.size - 1, max(1, math.ceil(valid_fraction * keys.size)))
    first_valid = keys.size - n_valid
    sizes = np.bincount(row_rank, minlength=keys.size)
    cut = int(sizes[:first_valid].sum())
    split_time = float(np.sort(group_time)[first_valid])
    return GroupSplit(rows[:cut], rows[cut:], sizes[:first_valid], sizes[first_valid:], split_time)


def _eligible_split(group_ids: np.ndarray, times: np.ndarray, valid_fraction: float,
                    eligible: np.ndarray) -> GroupSplit:
    if eligible.shape != group_ids.shape:
        raise ValueError(f"valid_eligible has shape {eligible.shape}; expected {group_ids.shape}")
    if not eligible.any():
        raise ValueError("no validation-eligible group: the ranker needs groups to validate on")
    rows_e = np.flatnonzero(eligible)
    inner = time_split(group_ids[rows_e], times[rows_e], valid_fraction)
    others = np.flatnonzero(~eligible)
    keys, inverse = np.unique(group_ids[others], return_inverse=True)
    group_time = np.full(keys.size, -np.inf)
    np.maximum.at(group_time, inverse, times[others])
    early = group_time < inner.split_time  # only groups entirely before the validation period
    keep = others[early[inverse]]
    if keep.size:  # in time order like the split's own train rows, contiguous by group
        order = np.lexsort((np.arange(keep.size), group_ids[keep], group_time[inverse][early[inverse]]))
        keep = keep[order]
        first_seen = np.r_[True, group_ids[keep][1:] != group_ids[keep][:-1]]
        extra_sizes = np.diff(np.r_[np.flatnonzero(first_seen), keep.size])
    else:
        extra_sizes = np.zeros(0, np.int64)
    return GroupSplit(np.r_[keep, rows_e[inner.train_rows]].astype(np.int64), rows_e[inner.valid_rows],
                      np.r_[extra_sizes, inner.train_sizes].astype(np.int64), inner.valid_sizes, inner.split_time)


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
