"""The ranker's training matrix: backfilled groups from serving's candidate mix, plus impression groups.

* Backfilled groups (:func:`offline.candidate_groups.hard_negative_groups`), always: each latest validation-period positive
  that serving would have retrieved (the user's ANN top ``candidate_k`` at that time, or the
  ``popular_k`` most popular items), plus hard negatives from that ANN top ``candidate_k``, popular
  negatives and a few random items (never a known positive), shuffled within the group.
  Point-in-time features come from the stream's own code (``offline.pit_features``).  They are the
  only groups the ranker is validated (and the gate judged) on: they hold the choice among the
  whole candidate mix serving ranks.
* Impression groups on top, for training only (``RankerData.valid_eligible`` is False for them):
  the training-examples snapshot (features as served, graded labels; a dismiss counts as 0), only
  groups with a positive, the latest ``max_impression_groups``; rows lacking one of our columns
  are skipped.  They re-rank lists an earlier ranker chose, so they never teach the choice among
  all candidates, and validating on them scores the ranker on its predecessor's lists.
* ``retrieval_score``, for every row whatever its source, as serving computes it for every
  candidate (``serving.candidates.query_scores``): the cosine of the item's vector and the mean
  of the unit vectors of the user's ``history_seeds`` latest positives before the group's time
  (the user's own vector without history), from the model fitted *before* the validation period.
* ``popularity_prior_by_item`` (:func:`offline.candidate_groups.popularity_prior`): positives before the retrieval cut
  over the most popular item's; serving's twin is ``ItemVectors.popularity_share``.
* Impression-derived features (``RankerDataConfig.exclude_features``) are left out: the events
  snapshot holds no impressions, so the replay cannot reproduce what serving sees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from offline.candidate_groups import hard_negative_groups, history_queries, popular_items, popularity_prior
from offline.dataset import TrainingData
from offline.models.base import FactorModel
from offline.pit_features import Query, features_at, names as pit_names
from offline.snapshot import Snapshot, parse_events, read_events_table, read_examples_table

RETRIEVAL = "retrieval_score"  # serving.scoring.RETRIEVAL (same column name)
POPULARITY = "popularity_prior_by_item"  # serving.scoring.POPULARITY
EXTRA = (RETRIEVAL, POPULARITY)  # serving.scoring.EXTRA: the columns after the stream's features
MISSING_FEATURE = -1e30  # serving.impressions.MISSING_FEATURE: how impressions carry NaN (missing) features


@dataclass(frozen=True)
class RankerDataConfig:
    max_impression_groups: int = 1000  # latest impression groups (with a positive) added to training; 0 = none
    max_backfill_groups: int = 2500
    candidate_k: int = 150  # = serving_quota_ann: the retrieval top-k a group's positive and hard negatives come from
    n_hard_negatives: int = 12  # sampled from the retrieval model's top candidate_k for the user at the group's time
    n_random_negatives: int = 3  # uniformly random items (serving also shows trending / fresh ones)
    n_popular_negatives: int = 8  # from the popular_k most popular items: 12:8 ~ serving's ann:popular quotas (150:100)
    popular_k: int = 100  # = serving_quota_trending: how many popular items serving's candidate mix holds
    history_seeds: int = 10  # = serving_history_seeds: latest positives averaged into the ANN query
    replay_horizon_s: float | None = 14 * 86400.0  # None = replay the whole log
    # the period the groups' positives come from: the latest holdout_fraction of positives by time, scored by a
    # retrieval model fitted on everything before it (None: the retrieval selection's validation period and model)
    holdout_fraction: float | None = None
    # "latest": the latest positives of that period; "uniform": a uniform sample over it (more users: the latest
    # 10 % of MovieLens positives come from a few dozen heavy raters)
    sampling: str = "latest"
    seed: int = 0
    # features the backfill replay cannot reproduce: they depend on impressions, which are not in the events
    # snapshot (always 0 / the prior there, but live at serving time): left out of the ranker's columns
    exclude_features: tuple[str, ...] = ("seen_before_by_user_item", "times_seen_by_user_item",
                                         "ctr_smoothed_by_item", "implement_rate_smoothed_by_item")


@dataclass(frozen=True, eq=False)
class RankerData:
    X: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]
    group_ids: npt.NDArray[np.int64]
    times: npt.NDArray[np.float64]
    feature_names: tuple[str, ...]
    n_impression_groups: int
    n_backfill_groups: int
    n_not_retrieved: int = 0  # validation positives skipped as backfill groups: outside the retrieval top-k
    valid_eligible: npt.NDArray[np.bool_] | None = None  # per row: may validate (backfilled); None = every row


def impression_rows(snap: Snapshot, columns: tuple[str, ...]) -> tuple[list[np.ndarray], list[int], list[str], list[float]]:
    table = read_examples_table(snap)
    X, y, groups, times = [], [], [], []
    for row in table.to_pylist():
        served = json.loads(row["feature_names"] or "null")
        values = json.loads(row["features"] or "null")
        if not served or not values or len(served) != len(values):
            continue
        where = {n: k for k, n in enumerate(served)}
        if any(n not in where for n in columns):
            continue
        vals = np.array([values[where[n]] for n in columns], dtype=np.float64)
        X.append(np.where(vals <= MISSING_FEATURE, np.nan, vals).astype(np.float32))  # the sentinel back to NaN
        y.append(max(0, int(row["grade"])))
        groups.append(row["group_id"])
        times.append(float(row["ts"]))
    return X, y, groups, times


def build_ranker_data(snap: Snapshot, data: TrainingData, fit_model: FactorModel, cut_time: float,
                      cfg: RankerDataConfig = RankerDataConfig(), progress: bool = False) -> RankerData:
    stream = pit_names()
    kept = [j for j, n in enumerate(stream) if n not in cfg.exclude_features]
    columns = tuple(stream[j] for j in kept) + EXTRA
    X_imp, y_imp, g_imp, t_imp = _latest_groups(*_with_positive(*impression_rows(snap, columns)),
                                                cfg.max_impression_groups)
    _, g_codes = np.unique(np.asarray(g_imp, dtype=object), return_inverse=True) if g_imp else (None, np.zeros(0, np.int64))
    n_imp = int(g_codes.max()) + 1 if len(g_codes) else 0
    pos = data.positives
    by_time = np.argsort(data.times, kind="stable")
    # latest first; a generous window, since positives outside the retrieval top-k are skipped
    late = by_time[data.times[by_time] >= cut_time]
    if cfg.sampling == "uniform":  # every sampled positive that serving would have retrieved becomes a group
        take = min(late.size, cfg.max_backfill_groups)
        late = np.sort(np.random.default_rng(cfg.seed).choice(late, take, replace=False)) if take else late
        late = late[np.argsort(data.times[late], kind="stable")]
    elif cfg.sampling == "latest":
        late = late[-cfg.max_backfill_groups * 8:]
    else:
        raise ValueError(f"RankerDataConfig.sampling must be 'latest' or 'uniform', got {cfg.sampling!r}")
    q = history_queries(fit_model.item_vectors(), fit_model.user_vectors(), pos.users, pos.items, data.times,
                        pos.users[late], data.times[late], cfg.history_seeds)
    bf = hard_negative_groups(pos.users[late], pos.items[late], data.times[late],
                              np.maximum(pos.values[late].astype(np.int64), 1), q, fit_model.item_vectors(),
                              pos.users, pos.items, cfg.n_hard_negatives, cfg.n_random_negatives, cfg.seed,
                              cfg.candidate_k, cfg.max_backfill_groups, group_id_start=n_imp,
                              popular=popular_items(pos.items, data.times, cut_time, len(data.item_ids),
                                                    cfg.popular_k), n_popular=cfg.n_popular_negatives)
    n_back = len(np.unique(bf.group_ids))
    if n_back == 0:
        raise ValueError(f"none of the {late.size} validation-period positives is in the retrieval model's top "
                         f"{cfg.candidate_k}: no backfilled groups to train and validate the ranker on "
                         f"(raise candidate_k, or train on more data)")
    firsts = np.flatnonzero(np.r_[True, bf.group_ids[1:] != bf.group_ids[:-1]])
    bounds = np.r_[firsts, len(bf.group_ids)]
    queries = [Query(data.user_ids[bf.user_ids[a]], tuple(data.item_ids[i] for i in bf.item_ids[a:b]), float(bf.times[a]))
               for a, b in zip(bounds[:-1], bounds[1:])]
    start = None if cfg.replay_horizon_s is None else float(bf.times.min()) - cfg.replay_horizon_s
    feats = features_at(_events_since(snap, start), queries, progress=progress)
    prior = popularity_prior(pos.items, data.times, cut_time, len(data.item_ids))[bf.item_ids]
    X_back = np.hstack([np.vstack(feats)[:, kept], bf.retrieval[:, None], prior[:, None]])
    X_all = np.vstack([np.vstack(X_imp), X_back]) if X_imp else X_back
    eligible = np.r_[np.zeros(len(y_imp), bool), np.ones(len(bf.labels), bool)]
    return RankerData(X_all.astype(np.float32), np.r_[np.asarray(y_imp, np.int64), bf.labels.astype(np.int64)],
                      np.r_[g_codes.astype(np.int64), bf.group_ids.astype(np.int64)],
                      np.r_[np.asarray(t_imp, np.float64), bf.times.astype(np.float64)], columns, n_imp, n_back,
                      bf.n_not_retrieved, eligible)


def _latest_groups(X: list[np.ndarray], y: list[int], groups: list[str], times: list[float], limit: int
                   ) -> tuple[list[np.ndarray], list[int], list[str], list[float]]:
    """Rows of the ``limit`` latest groups (a group's time: its latest row's)."""
    latest: dict[str, float] = {}
    for g, t in zip(groups, times):
        latest[g] = max(t, latest.get(g, -np.inf))
    keep_groups = set(sorted(latest, key=lambda g: (latest[g], g))[-limit:]) if limit > 0 else set()
    return _rows_of_groups(X, y, groups, times, keep_groups)


def _with_positive(X: list[np.ndarray], y: list[int], groups: list[str], times: list[float]
                   ) -> tuple[list[np.ndarray], list[int], list[str], list[float]]:
    """Only impression groups with a positive label: a group nobody acted on has no LambdaRank gradient
    (and must not take a place among the ``max_impression_groups``)."""
    return _rows_of_groups(X, y, groups, times, {g for g, lab in zip(groups, y) if lab > 0})


def _rows_of_groups(X: list[np.ndarray], y: list[int], groups: list[str], times: list[float], keep_groups: set[str]
                    ) -> tuple[list[np.ndarray], list[int], list[str], list[float]]:
    """The rows (in order) whose group is in ``keep_groups``."""
    keep = [k for k, g in enumerate(groups) if g in keep_groups]
    return [X[k] for k in keep], [y[k] for k in keep], [groups[k] for k in keep], [times[k] for k in keep]


def _events_since(snap: Snapshot, start: float | None) -> list:  # type: ignore[type-arg]
    """Events to replay: metadata always (it defines categories), interactions from ``start``."""
    table = read_events_table(snap, ["type", "ts", "raw"])
    ts = table.column("ts").to_numpy()
    types = np.asarray(table.column("type").to_numpy(zero_copy_only=False), dtype=object)
    keep = np.ones(len(ts), dtype=bool) if start is None else (ts >= start) | (types == "item") | (types == "user")
    return parse_events(table.column("raw").filter(keep).to_pylist())
