"""One interface, one suite: the Store guarantees every implementation gives.

Runs against ``MemoryStore`` and ``RedisStore`` on a real Redis server (``make_store`` in
``conftest.py``): dedupe per id, all-or-nothing guarded batches, a watermark that only moves
forward, a digest blind to operational keys, the vector accumulators' arithmetic; then what only
Redis has (TTLs, the read script's global keys, binary values and a script flush).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Callable

import pytest
import redis.asyncio as aioredis

from streams import keys
from streams.store import Guarded, GuardedBatch, Read, Store
from streams.store_redis import RedisStore
from streams.writes import expire_new, hincrby, hmax, zmax

pytestmark = pytest.mark.integration


def test_dedupe_is_per_id_and_counts_duplicates(make_store: Callable[[], Store]) -> None:
    async def go() -> None:
        store = make_store()
        g = Guarded("same", (hincrby("c", "n", 1),))
        r1 = await store.apply([g, g])
        r2 = await store.apply([g, Guarded(None, (hincrby("c", "n", 10),))])
        assert (r1.applied, r1.duplicates) == (1, 1)
        assert (r2.applied, r2.duplicates) == (1, 1)
        (c, stats) = await store.read([Read("hgetall", "c"), Read("hgetall", keys.STATS)])
        assert c == {"n": "11"}
        assert stats["duplicates"] == "2"

    asyncio.run(go())


def test_a_guarded_batch_applies_all_or_nothing(make_store: Callable[[], Store]) -> None:
    async def go() -> None:
        store = make_store()
        ok = await store.apply([GuardedBatch(("a", "b"), (hincrby("c", "n", 1), zmax("z", "m", 2.0))),
                                Guarded("g", (hincrby("c", "g", 1),))], {0: 4})
        assert (ok.applied, ok.duplicates, ok.conflict) == (3, 0, False)
        before = await store.digest()
        # "b" is marked already: nothing of this call may land, not even the watermark or the later group
        bad = await store.apply([GuardedBatch(("c", "b"), (hincrby("c", "n", 5),)),
                                 Guarded("h", (hincrby("c", "h", 1),))], {0: 9})
        assert bad.conflict and bad.applied == 0
        assert await store.digest() == before
        (c, wm) = await store.read([Read("hgetall", "c"), Read("hgetall", keys.WATERMARK)])
        assert c == {"n": "1", "g": "1"} and wm == {"0": "4"}
        # "c" was not left marked by the refused call
        again = await store.apply([GuardedBatch(("c",), (hincrby("c", "n", 5),))])
        assert (again.applied, again.conflict) == (1, False)
        (c,) = await store.read([Read("hgetall", "c")])
        assert c["n"] == "6"
        # no ids: always applied
        always = await store.apply([GuardedBatch((), (hincrby("c", "n", 1),))])
        assert not always.conflict
        with pytest.raises(ValueError):
            await store.apply([Guarded("x", ()), GuardedBatch(("y",), ())])

    asyncio.run(go())


def test_watermark_only_moves_forward(make_store: Callable[[], Store]) -> None:
    async def go() -> None:
        store = make_store()
        await store.apply([], {0: 10, 1: 3})
        await store.apply([], {0: 7, 1: 9})
        (wm,) = await store.read([Read("hgetall", keys.WATERMARK)])
        assert wm == {"0": "10", "1": "9"}

    asyncio.run(go())


def test_digest_ignores_operational_keys_but_not_state(make_store: Callable[[], Store]) -> None:
    async def go() -> None:
        a, b = make_store(), make_store()
        await a.apply([Guarded("x", (hincrby("k", "f", 1),))], {0: 1})
        await b.apply([Guarded("y", (hincrby("k", "f", 1),)), Guarded("y", (hincrby("k", "f", 1),))], {0: 5})
        assert await a.digest() == await b.digest()
        await b.apply([Guarded("z", (hincrby("k", "f", 1),))])
        assert await a.digest() != await b.digest()

    asyncio.run(go())


def test_vector_adds_match_the_reference_arithmetic(make_store: Callable[[], Store]) -> None:
    """vlogadd: accumulator and float32 mean as the reference (embeddings.logadd_state) computes
    them, from an absent key, onto an existing one, and restarting from one of another dimension."""
    import numpy as np

    from streams.embeddings import contribution, logadd_state
    from streams.writes import vlogadd

    rng = np.random.default_rng(3)
    payloads = [contribution(float(rng.uniform(-40, 40)), rng.normal(size=d)) for d in (8, 8, 8, 4, 4, 8)]

    async def go() -> tuple[list[object], list[object]]:
        store = make_store()
        for n, p in enumerate(payloads):
            await store.apply([Guarded(f"v{n}", (vlogadd("acc", "mean", p),))])
        acc: bytes | None = None
        want: list[object] = []
        for p in payloads:
            acc, mean = logadd_state(acc, p)
        want = [acc, mean]
        return await store.read([Read("get", "acc"), Read("get", "mean")]), want

    got, want = asyncio.run(go())
    assert got == want


@pytest.mark.parametrize("others", [False, True])
def test_expirenew_sets_the_ttl_only_when_a_field_is_created(infra: dict, others: bool) -> None:  # type: ignore[type-arg]
    """Redis only (the memory store keeps no TTLs); ``others``: more writes to the key in the batch."""
    url = f"redis://127.0.0.1:{infra['redis'].port}/0"

    async def go() -> list[int]:
        client = aioredis.Redis.from_url(url)
        store = RedisStore(client, f"t{uuid.uuid4().hex[:6]}")
        extra = (hmax("w", "x", 1.0), hincrby("w", "y", 2)) if others else ()
        ttls = []
        for n, (fld, ttl) in enumerate((("a", 100), ("a", 5000), ("b", 5000))):
            await store.apply([GuardedBatch((f"e{n}",), (hincrby("w", fld, 1), *extra, expire_new("w", ttl)))])
            ttls.append(int(await client.ttl(keys.namespaced(store.namespace, "w"))))
        await client.aclose()
        return ttls

    first, same_field, new_field = asyncio.run(go())
    assert 90 <= first <= 100
    assert 90 <= same_field <= 100  # the field existed: the deadline stays
    assert 4990 <= new_field <= 5000


def test_redis_reads_global_keys_binary_values_and_survive_a_script_flush(infra: dict) -> None:  # type: ignore[type-arg]
    """Redis only: the read script takes global keys as they are (not namespaced), hash values that
    are not UTF-8 fall back to plain pipelined reads, and a Redis that lost its scripts gets the
    read script again."""
    url = f"redis://127.0.0.1:{infra['redis'].port}/0"
    glob = f"{keys.GLOBAL_PREFIX}test:{uuid.uuid4().hex[:6]}"

    async def go() -> tuple[list[object], list[object], list[object]]:
        client = aioredis.Redis.from_url(url)
        store = RedisStore(client, f"r{uuid.uuid4().hex[:6]}")
        await client.hset(glob, mapping={"version": "v1", "dim": "8"})
        await client.hset(keys.namespaced(store.namespace, "h"), mapping={"a": "1"})
        reads = [Read("hgetall", glob), Read("hgetall", "h"), Read("zcard", "z")]
        plain = await store.read(reads)
        await client.script_flush()
        flushed = await store.read(reads)
        await client.hset(keys.namespaced(store.namespace, "h"), mapping={"b": b"\xff\xfe"})
        binary = await store.read(reads)
        await client.delete(glob)
        await client.aclose()
        return plain, flushed, binary

    plain, flushed, binary = asyncio.run(go())
    assert plain == [{"version": "v1", "dim": "8"}, {"a": "1"}, 0]
    assert flushed == plain
    assert binary[1] == {"a": "1", "b": "\ufffd\ufffd"}  # decoded with replacement, as the pipeline path does
