"""Merged batch writes (streams.merge) against applying every write in order, on MemoryStore."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.merge import merge_writes
from streams.pipeline import Planner
from streams.processor import BatchProcessor
from streams.store import Guarded, GuardedBatch
from streams.store_memory import MemoryStore
from streams.writes import (Write, delete, expire, hincrby, hincrbyfloat, hmax, hmin, hset, hsetnx, put, zlogadd,
                            zmax, zrem, zrembelow, ztrim)
from tests.unit.streams.streamgen import T0, cfg, make_stream, publish_vectors

KEYS = st.sampled_from(["h0", "h1", "z0"])
FIELDS = st.sampled_from(["a", "b", "c"])
NUM = st.floats(-50, 50, allow_nan=False)


def _write(op: str, key: str, field: str, x: float, n: int) -> Write:
    z = "z:" + key
    return {
        "hincrby": lambda: hincrby(key, field, n),
        "hincrbyfloat": lambda: hincrbyfloat("f:" + key, field, x),
        "hset": lambda: hset("s:" + key, field, str(n)),
        "hsetnx": lambda: hsetnx("s:" + key, field, str(n)),
        "hmax": lambda: hmax("m:" + key, field, x),
        "hmin": lambda: hmin("m:" + key, field, x),
        "zlogadd": lambda: zlogadd(z, field, x),
        "zmax": lambda: zmax(z, field, x),
        "zrem": lambda: zrem(z, field),
        "zrembelow": lambda: zrembelow(z, x),
        "set": lambda: put("str:" + key, str(n)),
        "expire": lambda: expire(key, abs(n) + 1),
        "del": lambda: delete(key),
    }[op]()


OPS = ["hincrby", "hincrbyfloat", "hset", "hsetnx", "hmax", "hmin", "zlogadd", "zmax", "zrem", "zrembelow",
       "set", "expire", "del"]
WRITE = st.builds(_write, st.sampled_from(OPS), KEYS, FIELDS, NUM, st.integers(-5, 5))


def state(writes: list[Write]) -> tuple[object, ...]:
    s = MemoryStore()
    for w in writes:
        s._apply_one(w)
    round_h = {k: {f: (round(float(v), 6) if f and "." in v else v) for f, v in h.items()} for k, h in s.hashes.items() if h}
    round_z = {k: {m: round(v, 6) for m, v in z.items()} for k, z in s.zsets.items() if z}
    return round_h, round_z, s.strings


@given(st.lists(WRITE, max_size=80))
@settings(max_examples=300, deadline=None, database=None)
def test_merged_writes_leave_the_same_state_as_every_write_in_order(writes: list[Write]) -> None:
    merged = merge_writes(writes)
    assert state(merged) == state(writes)
    assert len(merged) <= len(writes)


def test_runs_fold_and_barriers_split_them() -> None:
    ws = [hincrby("k", "n", 1), hincrby("k", "n", 2), zmax("z", "m", 1.0), zrembelow("z", 5.0),
          zmax("z", "m", 7.0), zmax("z", "m", 3.0), hincrby("k", "n", 4)]
    assert merge_writes(ws) == [hincrby("k", "n", 7), zmax("z", "m", 1.0), zrembelow("z", 5.0), zmax("z", "m", 7.0)]


def test_trims_are_deferred_to_the_end_of_the_batch_keeping_the_smallest_cap() -> None:
    ws = [zmax("z", "a", 1.0), ztrim("z", 3), zmax("z", "b", 2.0), ztrim("z", 2), zmax("z", "c", 3.0), ztrim("z", 2)]
    merged = merge_writes(ws)
    assert merged[-1] == ztrim("z", 2) and sum(w.op == "ztrim" for w in merged) == 1
    # every add followed by its trim (as the features write them), members in increasing score
    # order: trimming once at the end of the batch is exact
    assert state(merged) == state(ws)


def test_a_trim_is_applied_before_a_barrier_on_its_key() -> None:
    ws = [zmax("z", "a", 1.0), zmax("z", "b", 2.0), ztrim("z", 1), zrem("z", "b"), zmax("z", "c", 0.5)]
    assert state(merge_writes(ws)) == state(ws)


def test_guarded_batch_is_all_or_nothing_on_memory_store() -> None:
    async def go() -> None:
        s = MemoryStore()
        r1 = await s.apply([GuardedBatch(("a", "b"), (hincrby("k", "n", 1),))], {0: 5})
        assert (r1.applied, r1.conflict) == (2, False)
        before = await s.digest()
        r2 = await s.apply([GuardedBatch(("c", "b"), (hincrby("k", "n", 1),)), Guarded("d", (hincrby("k", "m", 1),))],
                           {0: 9})
        assert r2.conflict and r2.applied == 0
        assert await s.digest() == before and s.hashes["watermark"] == {"0": "5"}
        assert "dedupe:c" not in s.strings

    asyncio.run(go())


def test_merged_and_per_event_plans_give_the_same_state() -> None:
    stream = make_stream(3, n=800)
    digests = []
    for merge in (True, False):
        store = MemoryStore()
        publish_vectors(store, stream.vectors)

        async def nothing(v: bytes, k: bytes | None) -> None:
            return None

        proc = BatchProcessor(store, nothing, lambda: T0 + timedelta(days=30), "", cfg(3),
                              planner=Planner(cfg(3), "", merge=merge))

        async def go() -> None:
            for start in range(0, len(stream.records), 97):
                await proc.process(stream.records[start:start + 97])

        asyncio.run(go())
        assert proc.counters.applied > 0
        digests.append(asyncio.run(store.digest()))
    assert digests[0] == digests[1]
