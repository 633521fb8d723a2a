"""The apply script's wire format: a batch of guarded writes as ONE JSON array (pure).

redis-py packs every argument in Python (~1 us each) and a batch has ~100k of them;
orjson writes the array in one C call and Lua's cjson reads it in one.  A binary
value is replaced in the array by ``[n]``, its ARGV index.

Inside Redis every ``redis.call`` costs about as much as the command itself, and
with AOF on each *write* command is propagated once more.  So the merged writes of
a GuardedBatch (one per (key, field), streams.merge) are regrouped per key into
blocks that take fewer calls (``blocks``):

    H key n (fop field value)*n   hash field ops on one key: one HMGET of the fields
                                  whose new value depends on the old one, then one
                                  HSET of every changed field.  fop: + hincrby,
                                  f hincrbyfloat, s hset, S hsetnx, x hmax, n hmin
    Z key n (member score)*n      zmax on one key: one ZADD GT
    L key n (member weight)*n     zlogadd on one key: one ZMSCORE, one ZADD

A block is only used where it takes fewer calls than the writes it replaces.  Any
other op on a key (ztrim, zrem, zrembelow, del, set, vlogadd on either of its
keys) or a repeated field closes the key's open block, so the writes of one key
keep their order; writes of different keys are independent, so a block may absorb
later writes of its key.  An expire or expirenew does not close it: it comes after
the block's first write, so the key exists when it runs, and a TTL commutes with
field writes.  The state is the same as applying the writes one
by one, except that hincrbyfloat adds in double precision (as the in-memory
store does) instead of Redis's long double.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence, Union

import orjson

from streams.store import Group, GuardedBatch
from streams.writes import Write

HASH_FOP = {"hincrby": "+", "hincrbyfloat": "f", "hset": "s", "hsetnx": "S", "hmax": "x", "hmin": "n"}
HASH_OP = {f: op for op, f in HASH_FOP.items()}
_READS = frozenset("+fSxn")  # field ops whose new value depends on the stored one
MAX_BLOCK = 200  # fields per block (Lua's unpack takes a bounded number of values)



@dataclass(slots=True)
class Block:
    """Writes of one key taking fewer calls together: ``items`` are (fop, field, value) for H,
    (member, value) for Z and L."""

    kind: str
    key: str
    items: list[tuple[Any, ...]]
    members: set[str] = field(default_factory=set)


def _value(op: str, k: str, a: str, b: object, blobs: list[bytes]) -> object:
    t = type(b)
    if t is float:
        if not math.isfinite(b):  # type: ignore[arg-type]
            raise ValueError(f"non-finite value in a write: {op} {k} {a}")
        return repr(b)
    if t is int:
        return str(b)
    if t is bytes:
        blobs.append(b)  # type: ignore[arg-type]
        return [len(blobs) + 1]
    return b


def _worth_it(kind: str, items: list[tuple[Any, ...]]) -> bool:
    """A block costs 1-2 calls; the single writes one per write (two for hmax/hmin/hsetnx/zlogadd)."""
    if kind == "H":
        reads = any(f in _READS for f, _, _ in items)
        single = sum(2 if f in "xnS" else 1 for f, _, _ in items)
        return single > (2 if reads else 1)
    return len(items) >= 2


def blocks(writes: Sequence[Write]) -> list[Union[Write, Block]]:
    """The writes in call-saving blocks (module docstring); a block keeps its first write's place."""
    out: list[Union[Write, Block]] = []
    open_: dict[str, Block] = {}  # key -> its open block
    for w in writes:
        op, key, a, b = w
        fop = HASH_FOP.get(op)
        kind = "H" if fop is not None else "Z" if op == "zmax" else "L" if op == "zlogadd" else ""
        if not kind:
            if op != "expire" and op != "expirenew":  # a TTL commutes with the block's field writes
                open_.pop(key, None)
            if op == "vlogadd":
                open_.pop(a, None)
            out.append(w)
            continue
        item = (fop, a, b) if kind == "H" else (a, b)
        blk = open_.get(key)
        if blk is not None and blk.kind == kind and a not in blk.members and len(blk.items) < MAX_BLOCK:
            blk.items.append(item)
            blk.members.add(a)
            continue
        blk = open_[key] = Block(kind, key, [item], {a})
        out.append(blk)
    return out


def _flat_writes(writes: Sequence[Write], flat: list[object], blobs: list[bytes], grouped: bool) -> int:
    """Append the writes (as entries) to ``flat``; returns the number of entries."""
    add, extend = flat.append, flat.extend
    entries = blocks(writes) if grouped else list(writes)
    n = 0
    for e in entries:
        if isinstance(e, Block):
            kind, key, items = e.kind, e.key, e.items
            if not _worth_it(kind, items):
                for it in items:
                    op, a, b = (HASH_OP[it[0]], it[1], it[2]) if kind == "H" else (
                        "zmax" if kind == "Z" else "zlogadd", *it)
                    extend((op, key, a, _value(op, key, a, b, blobs)))
                    n += 1
                continue
            extend((kind, key, len(items)))
            if kind == "H":
                for f, a, b in items:
                    extend((f, a, _value(HASH_OP[f], key, a, b, blobs)))
            else:
                for a, b in items:
                    extend((a, _value(kind, key, a, b, blobs)))
            n += 1
            continue
        op, k, a, b = e
        extend((op, k, a, _value(op, k, a, b, blobs)))
        n += 1
    return n


def pack_batch(namespace: str, ttl_s: int, batch: Sequence[Group], watermark: dict[int, int] | None,
               grouped: bool = True) -> list[bytes]:
    """The batch as the script's arguments: ONE JSON array plus the binary values it references.
    ``grouped``: the GuardedBatch's writes in blocks (plain Guarded groups are never grouped: a
    duplicate's writes are skipped by count)."""
    flat: list[object] = [namespace, str(ttl_s), str(len(batch))]
    blobs: list[bytes] = []
    add, extend = flat.append, flat.extend
    for n, g in enumerate(batch):
        if isinstance(g, GuardedBatch):
            if n:
                raise ValueError("a GuardedBatch must be the first group of an apply")
            if len(set(g.dedupe_ids)) != len(g.dedupe_ids):
                raise ValueError("a GuardedBatch's dedupe ids must be distinct")
            extend((None, str(len(g.dedupe_ids)), *g.dedupe_ids))
            at = len(flat)
            add("0")
            flat[at] = str(_flat_writes(g.writes, flat, blobs, grouped))
        else:
            add(g.dedupe_id or "")
            add(str(len(g.writes)))
            _flat_writes(g.writes, flat, blobs, False)
    wm = watermark or {}
    add(str(len(wm)))
    for p, off in wm.items():
        extend((str(p), str(off)))
    return [orjson.dumps(flat), *blobs]
