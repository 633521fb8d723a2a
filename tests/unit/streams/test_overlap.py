"""Planning the next part while the current one applies gives exactly the sequential result."""

from __future__ import annotations

import asyncio
import random

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from streams import keys, overlay
from streams.batch import Record
from streams.store import Guarded, GuardedBatch, Read
from streams.store_memory import MemoryStore
from streams.writes import Write, delete, hincrby, hmax, hset, put, vlogadd, zlogadd, zmax, zrem, zrembelow, ztrim
from streams.embeddings import contribution
from tests.unit.streams.streamgen import cfg, interleave, make_stream, run

import numpy as np


def state(store: MemoryStore) -> tuple[object, object, object]:
    return ({k: v for k, v in store.hashes.items() if v}, {k: v for k, v in store.zsets.items() if v},
            dict(store.strings))


@given(seed=st.integers(0, 10_000), per_apply=st.integers(1, 40))
@settings(max_examples=10, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.generate])
def test_overlapped_applies_leave_the_state_and_rows_of_sequential_ones(seed: int, per_apply: int) -> None:
    s = make_stream(seed % 5, n=300)
    c = cfg(3)
    records = interleave(s.records, seed)
    # a retried record and a malformed one: duplicates and dead letters inside the overlapped parts
    records = records[:50] + [records[10], Record(0, 999, b"{nope")] + records[50:]
    seq = run(records, c, s.vectors, batch=100, max_events=per_apply, overlap=False)
    ovl = run(records, c, s.vectors, batch=100, max_events=per_apply, overlap=True)
    assert state(ovl.store) == state(seq.store)  # exactly: same floats, same bytes
    assert ovl.rows == seq.rows
    assert seq.rows  # impressions did close inside the run


KEYS = ["h0", "h1", "s0", "s1", "z0", "z1"]


def random_write(rng: random.Random) -> Write:
    k = rng.randrange(9)
    h, z, m = rng.choice(["h0", "h1"]), rng.choice(["z0", "z1"]), f"m{rng.randrange(8)}"
    if k == 0:
        return hincrby(h, f"f{rng.randrange(3)}", rng.randrange(-2, 4))
    if k == 1:
        return hset(h, f"t{rng.randrange(3)}", rng.choice("abc"))
    if k == 2:
        return hmax(h, "x", rng.uniform(0, 10))
    if k == 3:
        return zmax(z, m, rng.uniform(0, 10))
    if k == 4:
        return zlogadd(z, m, rng.uniform(-5, 5))
    if k == 5:
        return zrem(z, m)
    if k == 6:
        return rng.choice([ztrim(z, rng.randrange(1, 4)), zrembelow(z, rng.uniform(0, 5)), delete(rng.choice(KEYS))])
    if k == 7:
        return put(rng.choice(["s0", "s1"]), bytes([rng.randrange(256)]))
    return vlogadd("s1", "s0", contribution(rng.uniform(-3, 3), np.array([rng.uniform(-1, 1) for _ in range(3)])))


@given(seed=st.integers(0, 100_000))
@settings(max_examples=300, deadline=None, database=None, phases=[Phase.generate])
def test_overlay_answers_as_a_read_after_the_apply_would(seed: int) -> None:
    rng = random.Random(seed)
    store = MemoryStore()
    asyncio.run(store.apply([Guarded(None, tuple(random_write(rng) for _ in range(rng.randrange(0, 25))))]))
    for g in ("a", "b", "c"):
        if rng.random() < 0.5:
            store.strings[keys.dedupe(g)] = b"1"
    ids = tuple(f"e{k}" for k in range(rng.randrange(0, 3)))
    prev: list[GuardedBatch | Guarded] = [GuardedBatch(ids, tuple(random_write(rng) for _ in range(rng.randrange(0, 12))))]
    prev += [Guarded(rng.choice(["a", "b", "c", None]), tuple(random_write(rng) for _ in range(rng.randrange(0, 4))))
             for _ in range(rng.randrange(0, 4))]
    reads = list(dict.fromkeys(
        [Read("hgetall", rng.choice(["h0", "h1"])), Read("get", rng.choice(["s0", "s1"])),
         rng.choice([Read("zrange", rng.choice(["z0", "z1"]), (0, rng.randrange(0, 5))),
                     Read("zrangebelow", rng.choice(["z0", "z1"]), (rng.uniform(-3, 8), rng.randrange(1, 5)))]),
         Read("zscore", rng.choice(["z0", "z1"]), (f"m{rng.randrange(8)}",)),
         Read("get", keys.dedupe(rng.choice(["a", "b", "e0", "e1", "zz"])))]))
    ov = overlay.prepare(prev, reads)
    assert ov is not None
    raw = asyncio.run(store.read(list(ov.reads)))  # read before the apply ...
    got = overlay.answer(ov, raw)
    res = asyncio.run(store.apply(prev))
    if res.conflict:  # the batch's ids were marked: the caller re-plans, the overlay is not used
        return
    assert got == asyncio.run(store.read(reads))  # ... answers as a read after it


def test_reads_it_cannot_replay_are_refused() -> None:
    prev = [GuardedBatch(("e",), (zmax("z", "m", 1.0),))]
    assert overlay.prepare(prev, [Read("zrevrange", "z", (0, 3))]) is None
    assert overlay.prepare(prev, [Read("zrange", "z", (2, 3))]) is None
    assert overlay.prepare(prev, [Read("zrange", "z", (0, 3))]) is not None
