"""The ranker's training matrix: one query group per impression, plus backfilled groups.

* Impression groups come from the training-examples snapshot (features as served,
  graded labels; a dismiss counts as 0 for LambdaRank).  Rows whose served
  feature names lack one of ours are skipped.
* While there are fewer than ``min_impression_groups`` impressions, backfilled
  groups are added (``ranker_train.backfill_groups``): each of the latest
  validation-period positives plus ``n_negatives`` sampled items, every row with
  point-in-time features from the stream's code (``offline.pit_features``).
* ``retrieval_score`` is the cosine of the user's and the item's vectors from the
  retrieval model fitted *before* the validation period, as serving's ANN scores it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from offline.dataset import TrainingData
from offline.models.base import FactorModel
from offline.pit_features import Query, features_at, names as pit_names
from offline.ranker_train import backfill_groups
from offline.snapshot import Snapshot, parse_events, read_events_table, read_examples_table

RETRIEVAL = "retrieval_score"  # serving.scoring.RETRIEVAL (same column name)


@dataclass(frozen=True)
class RankerDataConfig:
    min_impression_groups: int = 1000
    max_backfill_groups: int = 800
    n_negatives: int = 19
    replay_horizon_s: float | None = 14 * 86400.0  # None = replay the whole log
    seed: int = 0


@dataclass(frozen=True, eq=False)
class RankerData:
    X: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]
    group_ids: npt.NDArray[np.int64]
    times: npt.NDArray[np.float64]
    feature_names: tuple[str, ...]
    n_impression_groups: int
    n_backfill_groups: int


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def retrieval_scores(model: FactorModel, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    u, v = _unit(model.user_vectors()), _unit(model.item_vectors())
    return np.einsum("ij,ij->i", u[users], v[items]).astype(np.float32)


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
        X.append(np.array([values[where[n]] for n in columns], dtype=np.float32))
        y.append(max(0, int(row["grade"])))
        groups.append(row["group_id"])
        times.append(float(row["ts"]))
    return X, y, groups, times


def build_ranker_data(snap: Snapshot, data: TrainingData, fit_model: FactorModel, cut_time: float,
                      cfg: RankerDataConfig = RankerDataConfig(), progress: bool = False) -> RankerData:
    columns = pit_names() + (RETRIEVAL,)
    X_imp, y_imp, g_imp, t_imp = impression_rows(snap, columns)
    _, g_codes = np.unique(np.asarray(g_imp, dtype=object), return_inverse=True) if g_imp else (None, np.zeros(0, np.int64))
    n_imp = int(g_codes.max()) + 1 if len(g_codes) else 0
    parts_X = [np.vstack(X_imp)] if X_imp else []
    parts_y, parts_g, parts_t = [np.asarray(y_imp, np.int64)], [g_codes.astype(np.int64)], [np.asarray(t_imp, np.float64)]
    n_back = 0
    if n_imp < cfg.min_impression_groups:
        pos = data.positives
        late = np.flatnonzero(data.times >= cut_time)[-cfg.max_backfill_groups:]
        bf = backfill_groups(pos.users[late], pos.items[late], data.times[late], pos.values[late].astype(np.int64),
                             np.arange(pos.n_items), cfg.n_negatives, cfg.seed, group_id_start=n_imp)
        n_back = len(np.unique(bf.group_ids))
        firsts = np.flatnonzero(np.r_[True, bf.group_ids[1:] != bf.group_ids[:-1]])
        bounds = np.r_[firsts, len(bf.group_ids)]
        queries = [Query(data.user_ids[bf.user_ids[a]], tuple(data.item_ids[i] for i in bf.item_ids[a:b]), float(bf.times[a]))
                   for a, b in zip(bounds[:-1], bounds[1:])]
        start = None if cfg.replay_horizon_s is None else float(bf.times.min()) - cfg.replay_horizon_s
        events = _events_since(snap, start)
        feats = features_at(events, queries, progress=progress)
        rs = retrieval_scores(fit_model, bf.user_ids, bf.item_ids)
        parts_X.append(np.hstack([np.vstack(feats), rs[:, None]]))
        parts_y.append(bf.labels.astype(np.int64))
        parts_g.append(bf.group_ids.astype(np.int64))
        parts_t.append(bf.times.astype(np.float64))
    if not parts_X:
        raise ValueError("no impressions and no positives to backfill from: nothing to train the ranker on")
    return RankerData(np.vstack(parts_X).astype(np.float32), np.concatenate(parts_y), np.concatenate(parts_g),
                      np.concatenate(parts_t), columns, n_imp, n_back)


def _events_since(snap: Snapshot, start: float | None) -> list:  # type: ignore[type-arg]
    """Events to replay: metadata always (it defines categories), interactions from ``start``."""
    table = read_events_table(snap, ["type", "ts", "raw"])
    ts = table.column("ts").to_numpy()
    types = np.asarray(table.column("type").to_numpy(zero_copy_only=False), dtype=object)
    keep = np.ones(len(ts), dtype=bool) if start is None else (ts >= start) | (types == "item") | (types == "user")
    return parse_events(table.column("raw").filter(keep).to_pylist())
