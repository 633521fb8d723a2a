"""A context read as it would be after an apply that is still running (pure).

The worker plans part N+1 while Redis applies part N (streams.processor): part
N+1's context is read *before* part N's apply is sent, so the answers miss part
N's writes.  ``prepare`` widens the read with what is needed to replay those
writes exactly, and ``answer`` replays them with the reference semantics
(``MemoryStore``) on the keys read, giving what a read issued after the apply
would have returned:

    ov = prepare(groups_of_part_n, reads_of_part_n1)      # None: not replayable, read after the apply
    raw = await store.read(ov.reads)                       # before part N's apply is sent
    results = answer(ov, raw)                              # as if read after it

Only hashes read whole (``hgetall``), strings (``get``, dedupe marks included),
member scores (``zscore``) and prefixes of sorted sets (``zrange`` from 0, ``zrangebelow``) are
replayable.  A prefix ``zrange(k, 0, stop)`` is widened by one member per member
the writes remove, add or re-score (each can push at most one member out of the
prefix), and every member they add or re-score is read with ``zscore``, so the
prefix after the writes is known exactly; any other write to that set (a trim, a
removal by score) reads it whole, as does a trim of a set read by ``zscore``.  A group guarded by its own dedupe id applies only if its mark is
absent, as in the store, so the marks of such groups are read too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from streams import keys
from streams.store import Group, GuardedBatch, Read
from streams.store_memory import MemoryStore
from streams.writes import Write

_PREFIX_SAFE = frozenset({"zmax", "zlogadd", "zrem"})  # writes a widened zrange prefix can replay
_REPLAYABLE = frozenset({"hgetall", "get", "zrange", "zrangebelow", "zscore"})
_PREFIXES = ("zrange", "zrangebelow")


@dataclass(frozen=True)
class Overlay:
    reads: tuple[Read, ...]  # ask the store for these: the caller's reads first, widened, then extras
    n: int  # how many of ``reads`` are the caller's
    original: tuple[Read, ...]  # the caller's reads as asked
    groups: tuple[tuple[str | None, tuple[Write, ...]], ...]  # (own guard id or None, writes on read keys)
    batch_ids: frozenset[str]  # ids a GuardedBatch of the previous apply marks
    guard_ids: frozenset[str]  # ids of the previous apply's singly guarded groups


def prepare(prev: Sequence[Group], reads: Sequence[Read]) -> Overlay | None:
    """The widened reads, or None when some read cannot be replayed (then read after the apply)."""
    by_key: dict[str, Read] = {}
    for r in reads:
        if r.op not in _REPLAYABLE or (r.op != "zscore" and by_key.get(r.key, r) != r):
            return None
        if r.op == "zrange" and int(r.args[0]) != 0:
            return None
        if r.op != "zscore":
            by_key[r.key] = r
    zkeys = {k for k, r in by_key.items() if r.op in _PREFIXES}
    read_keys = set(by_key) | {r.key for r in reads if r.op == "zscore"}
    # a vector add writes its mean key from its accumulator: read the accumulator too
    accs = sorted({w[1] for g in prev for w in g.writes
                   if w[0] == "vlogadd" and w[2] in read_keys and w[1] not in read_keys})
    if any(a in by_key for a in accs):
        return None
    read_keys.update(accs)
    groups: list[tuple[str | None, tuple[Write, ...]]] = []
    batch_ids: set[str] = set()
    guard_ids: set[str] = set()
    removed: dict[str, int] = {}
    scored: set[tuple[str, str]] = set()
    whole: set[str] = set()
    for g in prev:
        if isinstance(g, GuardedBatch):
            batch_ids.update(g.dedupe_ids)
            guard = None
        else:
            guard = g.dedupe_id
            if guard is not None:
                guard_ids.add(guard)
        ws = tuple(w for w in g.writes if w[1] in read_keys or (w[0] == "vlogadd" and w[2] in read_keys))
        if ws or guard is not None:  # a guarded group with no writes here still sets its mark
            groups.append((guard, ws))
        for op, key, a, _ in ws:
            if op in ("zmax", "zlogadd") or (op == "zrem" and key not in zkeys):
                scored.add((key, a))  # its score after the writes depends on the stored one
            if op == "ztrim" and key not in zkeys:
                whole.add(key)  # a member's fate depends on every other member's rank: read them all
            if key in zkeys:
                if op == "zrem":
                    removed[key] = removed.get(key, 0) + 1
                elif op not in _PREFIX_SAFE:
                    whole.add(key)
    out: list[Read] = []
    for r in reads:
        if r.op in _PREFIXES and r.key in (zkeys & (whole | removed.keys() | {k for k, _ in scored})):
            moved = removed.get(r.key, 0) + sum(1 for k, _ in scored if k == r.key)
            if r.key in whole or (r.op == "zrange" and int(r.args[1]) < 0):
                out.append(Read("zrange", r.key, (0, -1)))
            elif r.op == "zrange":
                out.append(Read("zrange", r.key, (0, int(r.args[1]) + moved)))
            else:
                out.append(Read("zrangebelow", r.key, (r.args[0], int(r.args[1]) + moved)))
        else:
            out.append(r)
    extra = [Read("get", a) for a in accs] + [Read("zrange", k, (0, -1)) for k in sorted(whole - zkeys)]
    extra += [Read("zscore", k, (m,)) for k, m in sorted(scored)]
    extra += [Read("get", keys.dedupe(g)) for g in dict.fromkeys(g for g, ws in groups if g is not None and ws)]
    return Overlay(tuple(out + extra), len(reads), tuple(reads), tuple(groups), frozenset(batch_ids),
                   frozenset(guard_ids))


def answer(ov: Overlay, raw: Sequence[Any]) -> list[Any]:
    """The caller's results after replaying the previous apply's writes on ``raw`` (``ov.reads``' answers)."""
    if len(raw) != len(ov.reads):
        raise ValueError(f"expected {len(ov.reads)} results, got {len(raw)}")
    mark_prefix = keys.dedupe("")
    touched = {w[1] for _, ws in ov.groups for w in ws} | {w[2] for _, ws in ov.groups for w in ws
                                                         if w[0] == "vlogadd"}
    mem = MemoryStore("overlay")
    marks: set[str] = set()
    for r, v in zip(ov.reads, raw):
        if r.op == "get" and r.key.startswith(mark_prefix):
            if v is not None:
                marks.add(r.key[len(mark_prefix):])
        if r.key not in touched:
            continue
        if r.op == "hgetall":
            if v:
                mem.hashes[r.key] = dict(v)
        elif r.op == "get":
            if v is not None:
                mem.strings[r.key] = v
        elif r.op in _PREFIXES:
            mem.zsets.setdefault(r.key, {}).update(v)
        elif r.op == "zscore" and v is not None:
            mem.zsets.setdefault(r.key, {})[str(r.args[0])] = float(v)
    marked = set(ov.batch_ids)
    for guard, ws in ov.groups:
        if guard is not None:
            if guard in marks or guard in marked:
                continue  # the store skips a group whose mark already exists
            marked.add(guard)
        if ws:
            mem.apply_writes(ws)
    applied_marks = ov.batch_ids | ov.guard_ids
    out: list[Any] = []
    for r, asked, v in zip(ov.reads[:ov.n], ov.original, raw[:ov.n]):
        if r.op == "get" and r.key.startswith(mark_prefix) and r.key[len(mark_prefix):] in applied_marks:
            out.append(v if v is not None else b"1")
        elif r.key in touched:
            out.append(mem.read_one(asked))
        elif r != asked:  # widened but untouched: cannot happen (only touched prefixes are widened)
            raise AssertionError(f"widened read {r} of an untouched key")
        else:
            out.append(v)
    return out
