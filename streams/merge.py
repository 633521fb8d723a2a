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
"""

from __future__ import annotations

import math
from typing import Iterable

from streams.writes import Write, _new

_DEFERRED_OR_BARRIER = frozenset({"ztrim", "zrem", "zrembelow", "del", "vlogadd"})


def _log2add(a: float, b: float) -> float:
    hi, lo = (a, b) if a >= b else (b, a)
    return hi + math.log2(1.0 + 2.0 ** (lo - hi))


def merge_writes(writes: Iterable[Write]) -> list[Write]:
    out: list[Write] = []
    runs: dict[tuple[str, str], int] = {}  # (key, field) -> index in ``out`` of its open run
    floor: dict[str, int] = {}  # key -> index of its last barrier (runs before it are closed)
    trims: dict[str, int] = {}  # key -> deferred trim size
    special = _DEFERRED_OR_BARRIER

    def barrier(key: str) -> None:
        keep = trims.pop(key, None)
        if keep is not None:
            out.append(Write("ztrim", key, "", keep))
        floor[key] = len(out)

    for w in writes:
        op, key, a, b = w
        if op in special:
            if op == "ztrim":
                keep = trims.get(key)
                if keep is None or int(b) < keep:
                    trims[key] = int(b)
                continue
            barrier(key)
            if op == "vlogadd":
                barrier(a)  # it also overwrites the mean key
            out.append(w)
            continue
        rk = (key, a)
        j = runs.get(rk)
        if j is not None:
            old = out[j]
            if old[0] == op and (not floor or j > floor.get(key, -1)):
                v = old[3]
                if op == "hincrby" or op == "hincrbyfloat":
                    out[j] = _new(Write, (op, key, a, v + b))  # type: ignore[operator]
                elif op == "hset" or op == "set" or op == "expire" or op == "expirenew":
                    out[j] = w
                elif op == "hmax" or op == "zmax":
                    if float(b) > float(v):
                        out[j] = w
                elif op == "hmin":
                    if float(b) < float(v):
                        out[j] = w
                elif op == "zlogadd":
                    out[j] = _new(Write, (op, key, a, _log2add(float(v), float(b))))
                elif op != "hsetnx":  # hsetnx: the first value stays
                    raise ValueError(f"write op {op!r} cannot be merged")
                continue
        runs[rk] = len(out)
        out.append(w)
    for key, keep in trims.items():
        out.append(Write("ztrim", key, "", keep))
    return out
