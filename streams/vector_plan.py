"""Writes of the incremental embeddings for one batch (pure; math in streams/embeddings.py).

Per interaction with a positive type weight (``FeatureConfig.type_weights``),
c = w_type * 2^((t - epoch)/h):

* item has a *trained* vector v (published by the trainer): the user's
  accumulator gets (c, unit(v))  -> ``vec:{ver}:user:{u}`` (user fold-in);
* item has no trained vector and the user has a vector x_u (as of this event):
  the item's accumulator gets (c, unit(x_u)) -> ``vec:{ver}:item:{i}``
  (new-item fold-in, retrievable as soon as the batch is applied).

Only trained item vectors feed user vectors, so a user's vector depends on that
user's own events in order (one partition) and never on how partitions
interleave; item fold-ins are commutative sums.  The user's vector "as of this
event" comes from the accumulator read at batch start plus the batch's earlier
*new* events of that user (re-delivered duplicates are already in the read).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from schemas.events import Event
from streams import keys
from streams.embeddings import (Vector, VectorMeta, contribution, log2_weight, logadd_acc, mean_of,
                                unit)
from streams.features.config import FeatureConfig
from streams.features.interactions import INTERACTIONS
from streams.store import Read
from streams.writes import Write, WriteList, WriteSink, vlogadd


@dataclass(frozen=True, slots=True)
class VectorConfig:
    half_life_s: float = 7 * 86400.0
    enabled: bool = True


def meta_read() -> Read:
    return Read("hgetall", keys.VEC_META)


def parse_meta(raw: Mapping[str, str] | None) -> VectorMeta | None:
    if not raw or "version" not in raw:
        return None
    try:
        dim = int(raw.get("dim", "0"))
    except ValueError:
        return None
    return VectorMeta(raw["version"], dim) if dim > 0 else None


def vector_reads(events: list[Event], meta: VectorMeta | None) -> list[Read]:
    if meta is None:
        return []
    items = dict.fromkeys(e.item_id for e in events if isinstance(e, INTERACTIONS))
    users = dict.fromkeys(e.user_id for e in events if isinstance(e, INTERACTIONS))
    return ([Read("get", keys.trained_item_vector(meta.version, i)) for i in items]
            + [Read("get", keys.user_vector_acc(meta.version, u)) for u in users])


@dataclass
class VectorPlanner:
    """Walks a batch's new events in order, keeping each user's accumulator current.

    A user's accumulator is only needed for a fold-in (an item without a trained vector), so
    the payloads added to it are queued per user and folded, in order, when one is (the same
    ``logadd_acc`` calls in the same order: the same bytes)."""

    meta: VectorMeta
    item_vectors: dict[str, Vector | None]
    user_accs: dict[str, bytes | None]
    features: FeatureConfig
    cfg: VectorConfig
    _units: dict[str, bytes | None] = field(default_factory=dict)  # item -> float64 LE unit(v), or None
    _pending: dict[str, list[bytes]] = field(default_factory=dict)  # user -> payloads not folded in yet

    def writes(self, event: Event) -> list[Write]:
        out = WriteList()
        self.emit(event, event.ts.timestamp(), out)
        return out.writes

    def emit(self, event: Event, ts: float, out: WriteSink) -> None:
        """The event's vector writes into ``out`` (``ts`` = the event time in epoch s)."""
        if not isinstance(event, INTERACTIONS):
            return
        w = self.features.type_weights.get(event.type, 0.0)
        if w <= 0:
            return
        ver, u, i = self.meta.version, event.user_id, event.item_id
        lw = log2_weight(w, ts, self.cfg.half_life_s, self.features.epoch_s)
        iv = self.item_vectors.get(i)
        if iv is not None:
            v = self._unit(i, iv)
            if v is None:
                return
            payload = _F64.pack(lw) + v  # == contribution(lw, unit(iv))
            self._pending.setdefault(u, []).append(payload)
            out.add(vlogadd(keys.user_vector_acc(ver, u), keys.user_vector(ver, u), payload))
            return
        xu = mean_of(self.acc(u))
        if xu is None:
            return
        xu_unit = unit(xu)
        if xu_unit is None:
            return
        out.add(vlogadd(keys.item_vector_acc(ver, i), keys.item_vector(ver, i), contribution(lw, xu_unit)))

    def acc(self, user: str) -> bytes | None:
        """The user's accumulator as of the events emitted so far."""
        acc = self.user_accs.get(user)
        pending = self._pending.pop(user, None)
        if pending:
            for payload in pending:
                acc = logadd_acc(acc, payload)
            self.user_accs[user] = acc
        return acc

    def _unit(self, item: str, v: Vector) -> bytes | None:
        if item not in self._units:
            u = unit(v)
            self._units[item] = None if u is None else np.asarray(u, dtype="<f8").tobytes()
        return self._units[item]


_F64 = struct.Struct("<d")
