"""Merge one batch's writes into the fewest equivalent ones (pure).

A consumed batch of MovieLens events fans out to ~37 writes per event, but many
touch the same (key, field): the stats counters, a busy item's window counters,
the EXPIRE of a user's window hash.  Redis charges per command, so the worker
applies the *merged* list: one write per (op, key, field) run, in the order of
each run's first write.

Rules, per (key, field) — a later write is folded into the earlier one only
when both have the same op and no barrier on the key came between them:

    hincrby / hincrbyfloat   deltas add
    hset / set / expire /    the last value wins
    expirenew
    hsetnx                   the first value wins
    hmax / hmin / zmax       the larger / smaller value wins
    zlogadd                  log2(2^a + 2^b)
    ztrim                    deferred: one trim per key at the end of the batch,
                             keeping the smallest N asked for
    zrem, zrembelow, del,    barriers: kept in place; a deferred trim of the key is
    vlogadd                  applied just before them, later writes start new runs

Merging is exact for every op but ``ztrim``: a capped set is trimmed once per
batch instead of after every write, so the batch's state equals the sequential
one unless a member trimmed mid-batch would have been re-added with a lower
score or a smaller log-weight (see docs/streams.md, "Capped sets").

``Merger`` is the one implementation: an accumulator the rules emit into (it is a
``streams.writes.WriteSink``), so the worker's plan feeds every event's writes straight in and
never builds the per-event ``Write`` tuples that merging would fold away again.
``merge_writes`` merges a finished list through it (``Merger.add``); its tests check the merged
state against applying every write in order (tests/unit/streams/test_merge.py), and
tests/unit/streams/test_fused.py that the sink methods and ``add`` give the same writes.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Iterable

from streams.writes import Write, _new

_DEFERRED_OR_BARRIER = frozenset({"ztrim", "zrem", "zrembelow", "del", "vlogadd"})


def _log2add(a: float, b: float) -> float:
    hi, lo = (a, b) if a >= b else (b, a)
    return hi + math.log2(1.0 + 2.0 ** (lo - hi))


def merge_writes(writes: Iterable[Write]) -> list[Write]:
    """The merged list of a finished list of writes (the rules above), through one ``Merger``."""
    m = Merger()
    m.extend(writes)
    return m.result()


_as_write = partial(_new, Write)


class Merger:
    """The merge as an accumulator: feed writes through the ``WriteSink`` methods (or ``add``)
    in order; ``result()`` is the merged list.  Open runs are kept per
    key (key -> field -> position), so a barrier closes its key's runs by dropping them, and
    the output lives in four parallel lists until ``result`` builds the ``Write`` tuples."""

    __slots__ = ("_ops", "_keys", "_fields", "_vals", "_runs", "_trims")

    def __init__(self) -> None:
        self._ops: list[str] = []
        self._keys: list[str] = []
        self._fields: list[str] = []
        self._vals: list[Any] = []
        self._runs: dict[str, dict[str, int]] = {}  # key -> field -> position of its open run
        self._trims: dict[str, int] = {}  # key -> deferred trim size

    def __len__(self) -> int:
        return len(self._ops) + len(self._trims)

    def result(self) -> list[Write]:
        out = list(map(_as_write, zip(self._ops, self._keys, self._fields, self._vals)))
        out += [_new(Write, ("ztrim", key, "", keep)) for key, keep in self._trims.items()]
        return out

    def _append(self, op: str, key: str, field: str, value: Any) -> None:
        self._ops.append(op)
        self._keys.append(key)
        self._fields.append(field)
        self._vals.append(value)

    def _barrier(self, key: str) -> None:
        keep = self._trims.pop(key, None)
        if keep is not None:
            self._append("ztrim", key, "", keep)
        self._runs.pop(key, None)

    def _fold(self, op: str, key: str, field: str, value: Any) -> None:
        """One mergeable write (the generic path; the methods below inline the hot ops)."""
        r = self._runs.get(key)
        if r is None:
            self._runs[key] = r = {}
        else:
            j = r.get(field)
            if j is not None and self._ops[j] == op:
                vals = self._vals
                if op == "hincrby" or op == "hincrbyfloat":
                    vals[j] = vals[j] + value
                elif op == "hset" or op == "set" or op == "expire" or op == "expirenew":
                    vals[j] = value
                elif op == "hmax" or op == "zmax":
                    if float(value) > float(vals[j]):
                        vals[j] = value
                elif op == "hmin":
                    if float(value) < float(vals[j]):
                        vals[j] = value
                elif op == "zlogadd":
                    vals[j] = _log2add(float(vals[j]), float(value))
                elif op != "hsetnx":  # hsetnx: the first value stays
                    raise ValueError(f"write op {op!r} cannot be merged")
                return
        r[field] = len(self._ops)
        self._append(op, key, field, value)

    def add(self, w: Write) -> None:
        op, key, a, b = w
        if op in _DEFERRED_OR_BARRIER:
            if op == "ztrim":
                self.ztrim(key, int(b))
                return
            self._barrier(key)
            if op == "vlogadd":
                self._barrier(a)  # it also overwrites the mean key
            self._append(op, key, a, b)
            return
        self._fold(op, key, a, b)

    def extend(self, writes: Iterable[Write]) -> None:
        for w in writes:
            self.add(w)

    # WriteSink: the same coercions as the constructors in streams.writes

    def hincrby(self, key: str, field: str, by: int = 1) -> None:
        by = int(by)
        runs, ops = self._runs, self._ops
        r = runs.get(key)
        if r is None:
            runs[key] = r = {}
        else:
            j = r.get(field)
            if j is not None and ops[j] == "hincrby":
                self._vals[j] += by
                return
        r[field] = len(ops)
        ops.append("hincrby")
        self._keys.append(key)
        self._fields.append(field)
        self._vals.append(by)

    def hincrby_expire_new(self, key: str, field: str, by: int, seconds: int) -> None:
        """``hincrby(key, field, by)`` then ``expire_new(key, seconds)``, in one call."""
        by, seconds = int(by), int(seconds)
        runs, ops, vals = self._runs, self._ops, self._vals
        r = runs.get(key)
        if r is None:
            runs[key] = r = {}
            j = None
        else:
            j = r.get(field)
        if j is not None and ops[j] == "hincrby":
            vals[j] += by
        else:
            r[field] = len(ops)
            ops.append("hincrby")
            self._keys.append(key)
            self._fields.append(field)
            vals.append(by)
        j = r.get("")
        if j is not None and ops[j] == "expirenew":
            vals[j] = seconds
        else:
            r[""] = len(ops)
            ops.append("expirenew")
            self._keys.append(key)
            self._fields.append("")
            vals.append(seconds)

    def hincrbyfloat(self, key: str, field: str, by: float) -> None:
        self._fold("hincrbyfloat", key, field, float(by))

    def hset(self, key: str, field: str, value: str) -> None:
        self._fold("hset", key, field, value)

    def hsetnx(self, key: str, field: str, value: str) -> None:
        self._fold("hsetnx", key, field, value)

    def hmax(self, key: str, field: str, value: float) -> None:
        r = self._runs.get(key)
        if r is None:
            self._runs[key] = r = {}
        else:
            j = r.get(field)
            if j is not None and self._ops[j] == "hmax":
                if float(value) > float(self._vals[j]):
                    self._vals[j] = value
                return
        ops = self._ops
        r[field] = len(ops)
        ops.append("hmax")
        self._keys.append(key)
        self._fields.append(field)
        self._vals.append(value)

    def hmin(self, key: str, field: str, value: float) -> None:
        r = self._runs.get(key)
        if r is None:
            self._runs[key] = r = {}
        else:
            j = r.get(field)
            if j is not None and self._ops[j] == "hmin":
                if float(value) < float(self._vals[j]):
                    self._vals[j] = value
                return
        ops = self._ops
        r[field] = len(ops)
        ops.append("hmin")
        self._keys.append(key)
        self._fields.append(field)
        self._vals.append(value)

    def zlogadd(self, key: str, member: str, log2_weight: float) -> None:
        log2_weight = float(log2_weight)
        r = self._runs.get(key)
        if r is None:
            self._runs[key] = r = {}
        else:
            j = r.get(member)
            if j is not None and self._ops[j] == "zlogadd":
                self._vals[j] = _log2add(float(self._vals[j]), log2_weight)
                return
        ops = self._ops
        r[member] = len(ops)
        ops.append("zlogadd")
        self._keys.append(key)
        self._fields.append(member)
        self._vals.append(log2_weight)

    def zmax(self, key: str, member: str, score: float) -> None:
        score = float(score)
        r = self._runs.get(key)
        if r is None:
            self._runs[key] = r = {}
        else:
            j = r.get(member)
            if j is not None and self._ops[j] == "zmax":
                if score > float(self._vals[j]):
                    self._vals[j] = score
                return
        ops = self._ops
        r[member] = len(ops)
        ops.append("zmax")
        self._keys.append(key)
        self._fields.append(member)
        self._vals.append(score)

    def ztrim(self, key: str, keep: int) -> None:
        keep = int(keep)
        old = self._trims.get(key)
        if old is None or keep < old:
            self._trims[key] = keep

    def put(self, key: str, value: bytes | str) -> None:
        self._fold("set", key, "", value)

    def expire(self, key: str, seconds: int) -> None:
        seconds = int(seconds)
        r = self._runs.get(key)
        if r is None:
            self._runs[key] = r = {}
        else:
            j = r.get("")
            if j is not None and self._ops[j] == "expire":
                self._vals[j] = seconds
                return
        ops = self._ops
        r[""] = len(ops)
        ops.append("expire")
        self._keys.append(key)
        self._fields.append("")
        self._vals.append(seconds)
