"""Sliding event-time window counters kept as bucketed hash fields.

State: one hash per (entity, window, period), where a period is one window
length; field ``<type>:<bucket>`` counts the events of that type whose event
time falls in that bucket.  Only ``hincrby`` is used, so any interleaving of the
same events gives the same state.  Growth is bounded by rotation: a period key
holds at most ``len(types) * n_buckets`` fields and is only read while the
window still overlaps it; its TTL (two periods after the period start, taken
from event time) lets Redis drop it afterwards.  The TTL is a deadline fixed per
period key, so it is sent as ``expirenew``: applied when a write creates a bucket
field of the key, not on every event.

Read side: the window at ``now`` spans buckets ``B-n+1 .. B`` (``B`` the bucket of
``now``), which touch at most two period keys.  Buckets after ``B`` (events
later than ``now``) are ignored, so the value is point-in-time correct.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from streams.features.config import FeatureConfig, Window
from streams.features.family import Column, ReadKey
from streams.store import Read
from streams.writes import Write, WriteList, WriteSink

KeyFn = Callable[[str, str, int], str]
"""(entity id, window name, period) -> key"""

Raw = Mapping[Read, Any]


def bucket_of(ts_s: float, w: Window) -> int:
    return math.floor(ts_s / w.bucket_s)


def period_of_bucket(bucket: int, w: Window) -> int:
    return bucket // w.n_buckets


def window_writes(key_fn: KeyFn, entity_id: str, type_: str, ts_s: float,
                  cfg: FeatureConfig) -> list[Write]:
    out = WriteList()
    window_emit(out, key_fn, entity_id, type_, ts_s, cfg)
    return out.writes


Slot = tuple[str, int, str, int]
"""(window name, period, field ``<type>:<bucket>``, TTL in s) of one event in one window."""

_last_slots: list[tuple[float, str, tuple[Window, ...], tuple[Slot, ...]]] = [(math.nan, "", (), ())]


def _slots(type_: str, ts_s: float, windows: tuple[Window, ...]) -> tuple[Slot, ...]:
    """Where an event of this type and time counts in each window.  The item and the user
    family ask for the same event one after the other, so the last answer is kept (one tuple,
    replaced whole)."""
    last = _last_slots[0]
    if last[0] == ts_s and last[1] == type_ and last[2] is windows:
        return last[3]
    out: list[Slot] = []
    for w in windows:
        b = math.floor(ts_s / w.bucket_s)  # bucket_of
        period = b // (w.length_s // w.bucket_s)  # period_of_bucket
        # alive until the window can no longer overlap this period
        out.append((w.name, period, f"{type_}:{b}", int((period + 2) * w.length_s - ts_s) + w.bucket_s))
    slots = tuple(out)
    _last_slots[0] = (ts_s, type_, windows, slots)
    return slots


def window_emit(out: WriteSink, key_fn: KeyFn, entity_id: str, type_: str, ts_s: float,
                cfg: FeatureConfig) -> None:
    """Per window: one count in the event's bucket of its period key, and (``emit_ttl``) the
    key's TTL as ``expirenew``."""
    if cfg.emit_ttl:
        for name, period, field, seconds in _slots(type_, ts_s, cfg.windows):
            out.hincrby_expire_new(key_fn(entity_id, name, period), field, 1, seconds)
    else:
        for name, period, field, _ in _slots(type_, ts_s, cfg.windows):
            out.hincrby(key_fn(entity_id, name, period), field, 1)


def _period_keys(key_fn: KeyFn, entity_id: str, now_s: float, w: Window) -> list[str]:
    last = bucket_of(now_s, w)
    first = last - w.n_buckets + 1
    periods = sorted({period_of_bucket(first, w), period_of_bucket(last, w)})
    return [key_fn(entity_id, w.name, p) for p in periods]


def window_reads(key_fn: KeyFn, entity_id: str, now_s: float,
                 cfg: FeatureConfig) -> list[Read]:
    return [Read("hgetall", k) for w in cfg.windows for k in _period_keys(key_fn, entity_id, now_s, w)]


def window_reads_many(key_fn: KeyFn, entity_ids: Sequence[str], now_s: float,
                      cfg: FeatureConfig) -> list[list[Read]]:
    """``window_reads`` of each entity (same reads, same order); periods computed once."""
    periods = [(w.name, _periods(now_s, w)) for w in cfg.windows]
    return [[Read("hgetall", key_fn(e, name, p)) for name, ps in periods for p in ps]
            for e in entity_ids]


def _periods(now_s: float, w: Window) -> list[int]:
    last = bucket_of(now_s, w)
    first = last - w.n_buckets + 1
    return sorted({period_of_bucket(first, w), period_of_bucket(last, w)})


_NOT_A_TYPE = (-1, 0)


def window_count_columns(found: Mapping[ReadKey, Any], key_fn: KeyFn, entity_ids: Sequence[str],
                         now_s: float, cfg: FeatureConfig) -> dict[tuple[str, str], Column]:
    """``window_counts`` of every entity at once: (type, window name) -> column over
    ``entity_ids``.  ``found`` is ``family.by_key(raw)``.  Counts are summed in the same
    order as ``window_counts`` (identical floats); field names are parsed once per request."""
    n, types = len(entity_ids), {t: k for k, t in enumerate(cfg.window_types)}
    parsed: dict[str, tuple[int, int]] = {}
    out: dict[tuple[str, str], Column] = {}
    for w in cfg.windows:
        last = bucket_of(now_s, w)
        first = last - w.n_buckets + 1
        periods = _periods(now_s, w)
        acc = [0.0] * (len(types) * n)
        for j, e in enumerate(entity_ids):
            for p in periods:
                fields = found.get(("hgetall", key_fn(e, w.name, p), ()))
                if not fields:
                    continue
                for fname, count in fields.items():
                    tb = parsed.get(fname)
                    if tb is None:
                        t, _, b = fname.rpartition(":")
                        tb = parsed[fname] = (types[t], int(b)) if t in types else _NOT_A_TYPE
                    if tb[0] >= 0 and first <= tb[1] <= last:
                        acc[tb[0] * n + j] += float(count)
        block = np.array(acc, dtype=np.float64).reshape(len(types), n)
        for t, k in types.items():
            out[(t, w.name)] = block[k].copy()
    return {(t, w.name): out[(t, w.name)] for t in cfg.window_types for w in cfg.windows}


def window_counts(raw: Raw, key_fn: KeyFn, entity_id: str, now_s: float,
                  cfg: FeatureConfig) -> dict[tuple[str, str], float]:
    """(type, window name) -> number of events in the window at ``now``."""
    types = set(cfg.window_types)
    out = {(t, w.name): 0.0 for t in cfg.window_types for w in cfg.windows}
    for w in cfg.windows:
        last = bucket_of(now_s, w)
        first = last - w.n_buckets + 1
        for key in _period_keys(key_fn, entity_id, now_s, w):
            fields: dict[str, str] = raw.get(Read("hgetall", key)) or {}
            for fname, count in fields.items():
                t, _, b = fname.rpartition(":")
                if t in types and first <= int(b) <= last:
                    out[(t, w.name)] += float(count)
    return out


def count_name(type_: str, entity: str, window: str) -> str:
    return f"{type_}_count_by_{entity}_{window}"
