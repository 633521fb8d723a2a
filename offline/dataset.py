"""A snapshot as training data: id tables, graded positives with times, and encoded metadata.

Positives for retrieval are interactions whose label grade (``streams.labels.grade``,
the same rules as the online labels) is above zero, except ratings below
``min_rating``; the interaction strength is the grade.  A (user, item) pair seen
more than once keeps its highest grade and its first time.
Item metadata: categories -> multi-hot genres, attribute ``year`` -> year bucket.
User metadata: attributes ``age``, ``gender``, ``occupation``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from offline.interactions import Interactions
from offline.models.side_info import ItemFeatures, UserFeatures, Vocabulary
from offline.snapshot import Snapshot, read_events_table
from schemas.events import EVENT_MODELS, INTERACTION_TYPES
from streams.labels import grade

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class TrainingData:
    user_ids: tuple[str, ...]  # index -> id
    item_ids: tuple[str, ...]
    positives: Interactions  # values = grade
    times: F64  # event time (epoch s) of each positive
    user_features: UserFeatures
    item_features: ItemFeatures
    data_start: datetime
    data_end: datetime
    n_events: int

    def user_index(self) -> dict[str, int]:
        return {u: k for k, u in enumerate(self.user_ids)}

    def item_index(self) -> dict[str, int]:
        return {i: k for k, i in enumerate(self.item_ids)}


def grades(types: npt.NDArray[np.object_], values: F64, min_rating: int) -> npt.NDArray[np.int64]:
    """Label grade of every interaction row (0 for ratings below ``min_rating`` and non-interactions)."""
    out = np.zeros(len(types), dtype=np.int64)
    codes = np.where(np.isnan(values), -1.0, values)
    for t in np.unique(types):
        if t not in INTERACTION_TYPES:
            continue
        rows = np.flatnonzero(types == t)
        uniq, inverse = np.unique(codes[rows], return_inverse=True)
        per_value = np.zeros(len(uniq), dtype=np.int64)
        for k, v in enumerate(uniq):
            fields: dict[str, Any] = {"event_id": "g", "ts": datetime.now(timezone.utc), "user_id": "u", "item_id": "i"}
            if t == "view":
                fields["dwell_ms"] = int(v)
            if t == "rate":
                fields["rating"] = int(v)
            g = grade(EVENT_MODELS[t].model_construct(**fields))  # type: ignore[arg-type]
            if t == "rate" and v < min_rating:
                g = 0
            per_value[k] = max(g, 0)
        out[rows] = per_value[inverse]
    return out


def _metadata(raw: list[bytes]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    items: dict[str, dict[str, Any]] = {}
    users: dict[str, dict[str, Any]] = {}
    for b in raw:
        obj = orjson.loads(b)
        if obj["type"] == "item":
            items[obj["item_id"]] = {"categories": obj.get("categories") or [], **(obj.get("attributes") or {})}
        else:
            users[obj["user_id"]] = dict(obj.get("attributes") or {})
    return items, users


def _int_or_none(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def load_training_data(snap: Snapshot, min_rating: int = 3) -> TrainingData:
    table = read_events_table(snap, ["type", "ts", "user_id", "item_id", "value"])
    types = np.asarray(table.column("type").to_numpy(zero_copy_only=False), dtype=object)
    ts = table.column("ts").to_numpy()
    values = table.column("value").to_numpy()
    meta_rows = np.flatnonzero((types == "item") | (types == "user"))
    raw = read_events_table(snap, ["raw"]).column("raw").take(meta_rows).to_pylist() if len(meta_rows) else []
    item_meta, user_meta = _metadata(raw)
    g = grades(types, values, min_rating)
    keep = np.flatnonzero(g > 0)
    users = np.asarray(table.column("user_id").take(keep).to_numpy(zero_copy_only=False), dtype=object)
    items = np.asarray(table.column("item_id").take(keep).to_numpy(zero_copy_only=False), dtype=object)
    user_ids = tuple(sorted(set(users.tolist()) | set(user_meta), key=_sort_key))
    item_ids = tuple(sorted(set(items.tolist()) | set(item_meta), key=_sort_key))
    uix, iix = {u: k for k, u in enumerate(user_ids)}, {i: k for k, i in enumerate(item_ids)}
    u = np.fromiter((uix[x] for x in users), dtype=np.int64, count=len(users))
    i = np.fromiter((iix[x] for x in items), dtype=np.int64, count=len(items))
    gk, tk = g[keep].astype(np.float32), ts[keep]
    # one row per pair: highest grade, first time
    pair = u * np.int64(len(item_ids)) + i
    order = np.lexsort((tk, pair))
    first = np.r_[True, pair[order][1:] != pair[order][:-1]]
    starts = np.flatnonzero(first)
    best = np.maximum.reduceat(gk[order], starts) if len(order) else gk[:0]
    sel = order[starts]
    by_time = np.argsort(tk[sel], kind="stable")
    sel, best = sel[by_time], best[by_time]
    positives = Interactions(u[sel], i[sel], best.astype(np.float32), len(user_ids), len(item_ids))
    vocab = Vocabulary(
        genres=tuple(sorted({c for m in item_meta.values() for c in m["categories"] if c != "unknown"})),
        occupations=tuple(sorted({str(m["occupation"]) for m in user_meta.values() if "occupation" in m})),
    )
    im = [item_meta.get(x, {"categories": []}) for x in item_ids]
    um = [user_meta.get(x, {}) for x in user_ids]
    item_f = vocab.encode_items([m["categories"] for m in im], [_int_or_none(m.get("year")) for m in im])
    user_f = vocab.encode_users([_int_or_none(m.get("age")) for m in um], [m.get("gender") for m in um],
                                [m.get("occupation") for m in um])
    return TrainingData(user_ids, item_ids, positives, tk[sel].astype(np.float64), user_f, item_f,
                        snap.data_start, snap.data_end, snap.n_events)


def _sort_key(x: str) -> tuple[int, int | str]:
    return (0, int(x)) if x.isdigit() else (1, x)


def time_cut(data: TrainingData, valid_fraction: float) -> float:
    """The event time splitting fit / validation positives: the latest ``valid_fraction`` are held out."""
    if len(data.times) == 0:
        raise ValueError("the snapshot holds no positive interactions: nothing to train on")
    return float(np.quantile(data.times, 1.0 - valid_fraction))
