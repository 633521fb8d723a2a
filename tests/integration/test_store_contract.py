"""One interface, one suite: every Store implementation must behave like the reference.

Runs against ``MemoryStore`` and ``RedisStore`` on a real Redis server (``make_store`` in
``conftest.py``): random write sequences against the in-memory reference.  The dedupe, atomicity,
watermark, digest and vector guarantees are in ``test_store_guarantees.py``.
"""

from __future__ import annotations

import asyncio
import random
from typing import Callable

import pytest

from streams.store import Guarded, GuardedBatch, Read, Store
from streams.store_memory import MemoryStore
from streams.writes import (Write, delete, expire, expire_new, hincrby, hincrbyfloat, hmax, hmin, hset, hsetnx, put,
                            zlogadd, zmax, zrem, ztrim)

pytestmark = pytest.mark.integration


def random_writes(rng: random.Random, n: int, shared: bool = False) -> list[Write]:
    """Random writes of every op.  ``shared``: the hash ops all on the same few keys (fields told
    apart by op) and the counters only growing, plus barriers (zrem, del) and TTLs: many ops per key,
    as in the worker's merged batches."""
    out: list[Write] = []
    for _ in range(n):
        k = rng.randrange(13 if shared else 10)
        h, z = f"h{rng.randrange(2 if shared else 3)}", f"z{rng.randrange(2)}"
        f, m = f"f{rng.randrange(5 if shared else 4)}", f"m{rng.randrange(8 if shared else 6)}"

        def hk(tag: str) -> tuple[str, str]:
            return (h, tag + f) if shared else (h + tag, f)

        if k == 0 or k >= 12:
            out.append(hincrby(*hk(""), rng.randrange(1, 5) if shared else rng.randrange(-3, 5)))
        elif k == 1:
            out.append(hincrbyfloat(*hk("f"), rng.uniform(-2, 2)))
        elif k == 2:
            out.append(hset(*hk("s"), rng.choice(["a", "b", "ü", "x y"])))
        elif k == 3:
            out.append(hsetnx(*hk("n"), str(rng.randrange(100))))
        elif k == 4:
            out.append(hmax(*hk("x"), rng.uniform(-100, 100)))
        elif k == 5:
            out.append(hmin(*hk("i"), rng.uniform(-100, 100)))
        elif k == 6:  # also on the sets that zmax and ztrim write: log-adds interleaved with them
            out.append(zlogadd(z + ("x" if rng.random() < 0.3 else ""), m, rng.uniform(-50, 50)))
        elif k == 7:
            out.append(zmax(z + "x", m, rng.uniform(0, 1000)))
        elif k == 8:
            out.append(ztrim(z + "x", rng.randrange(2, 6) if shared else rng.randrange(1, 4)))
        elif k == 9 and not shared:
            out.append(put(f"s{rng.randrange(3)}", bytes(rng.randrange(256) for _ in range(8))))
        elif k == 9:
            out.append(expire_new(h, 3600) if rng.random() < 0.5 else expire(h, 3600))
        elif k == 10:
            out.append(zrem(z, m))
        elif rng.random() < 0.3:
            out.append(delete(rng.choice([h, z])))
    return out


READS = [Read("hgetall", "h0"), Read("hmget", "h1", ("f0", "f1", "nope")), Read("zrevrange", "z0", (0, -1)),
         Read("zscore", "z1", ("m1",)), Read("get", "s0"), Read("zcard", "z0x"), Read("hgetall", "missing"),
         Read("zrangebelow", "z0", (10.0, 3)), Read("zrangebelow", "z0x", (500.0, 100)),
         Read("zrangebelow", "missing", (1.0, 5)), Read("zrangebetween", "z0x", (200.0, 700.0)),
         Read("zrangebetween", "z0", (-5.0, 40.0)), Read("zrangebetween", "z0x", (700.0, 200.0)),
         Read("zrangebetween", "missing", (0.0, 1.0))]


def normalise(results: list[object]) -> list[object]:
    out: list[object] = []
    for r in results:
        if isinstance(r, list) and r and isinstance(r[0], tuple):
            out.append([(m, round(s, 6)) for m, s in r])
        elif isinstance(r, float):
            out.append(round(r, 6))
        else:
            out.append(r)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_random_write_sequences_match_the_reference(make_store: Callable[[], Store], seed: int) -> None:
    rng = random.Random(seed)
    groups = [Guarded(f"g{seed}-{i}", tuple(random_writes(rng, rng.randrange(1, 8)))) for i in range(60)]

    async def go() -> tuple[list[object], str]:
        ref = MemoryStore()
        store = make_store()
        for start in range(0, len(groups), 7):
            await ref.apply(groups[start:start + 7])
            await store.apply(groups[start:start + 7])
        return normalise(await store.read(READS)), await store.digest(), normalise(await ref.read(READS)), await ref.digest()  # type: ignore[return-value]

    got, digest, want, want_digest = asyncio.run(go())  # type: ignore[misc]
    assert got == want
    assert digest == want_digest


@pytest.mark.parametrize("merge", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_batched_writes_on_shared_keys_match_the_reference(make_store: Callable[[], Store], seed: int,
                                                          merge: bool) -> None:
    """GuardedBatch writes (the worker's path) on few shared keys, with barriers and TTLs, equal the
    same writes applied one by one, merged (streams.merge, as the worker sends them) or not."""
    from streams.merge import merge_writes

    rng = random.Random(100 + seed)
    batches = [random_writes(rng, rng.randrange(20, 120), shared=True) for _ in range(8)]
    reads = [Read("hgetall", "h0"), Read("hgetall", "h1"), Read("zrange", "z0", (0, -1)),
             Read("zrange", "z1", (0, -1)), Read("zrange", "z0x", (0, -1)), Read("zrange", "z1x", (0, -1))]

    async def go() -> tuple[list[object], str, list[object], str]:
        ref = MemoryStore()
        store = make_store()
        for n, raw in enumerate(batches):
            ws = merge_writes(raw) if merge else raw
            ref.apply_writes(ws)
            await store.apply([GuardedBatch((f"b{seed}-{n}",), tuple(ws))])
        got, want = await store.read(reads), await ref.read(reads)
        for h in (0, 1):  # floats: the stores may format them differently
            for r in (got, want):
                r[h] = {k: (round(float(v), 9) if k[0] in "fxi" else v) for k, v in r[h].items()}
        return normalise(got), await store.digest(), normalise(want), await ref.digest()

    got, digest, want, want_digest = asyncio.run(go())
    assert got == want
    assert digest == want_digest


def test_log_adds_on_one_set_interleaved_with_its_other_writes_match_the_reference(
        make_store: Callable[[], Store]) -> None:
    """Many members log-added on one set in one batch (as the trending set gets them), a member
    log-added twice, and trims, removals and a delete of that set in between: the scores are
    those of applying each write in order."""
    rng = random.Random(7)
    ws: list[Write] = [zlogadd("t", f"m{j}", rng.uniform(-20, 20)) for j in range(4500)]
    ws += [zlogadd("t", "m3", 5.0), zlogadd("t", "m3", 7.5), ztrim("t", 3500), zlogadd("t", "m4", 1.0),
           zlogadd("t", "m4499", 9.0), zrem("t", "m5"), zlogadd("t", "m5", -3.0), zmax("t", "m6", 40.0),
           zlogadd("t", "m6", 39.0), zlogadd("u", "a", 1.0), delete("u"), zlogadd("u", "a", 2.0),
           zlogadd("u", "b", 3.0), expire("u", 3600)]
    reads = [Read("zrange", "t", (0, -1)), Read("zrange", "u", (0, -1)), Read("zscore", "t", ("m3",))]

    async def go() -> tuple[list[object], str, list[object], str]:
        ref, store = MemoryStore(), make_store()
        for part in (ws[:4200], ws[4200:]):
            ref.apply_writes(part)
            await store.apply([GuardedBatch((f"t{len(part)}",), tuple(part))])
        return (normalise(await store.read(reads)), await store.digest(), normalise(await ref.read(reads)),
                await ref.digest())

    got, digest, want, want_digest = asyncio.run(go())
    assert 3500 <= len(want[0]) < 3510 and want[1] == [("a", 2.0), ("b", 3.0)]  # type: ignore[arg-type]
    assert got == want
    assert digest == want_digest


def test_range_by_score_includes_both_bounds(make_store: Callable[[], Store]) -> None:
    """``zrangebetween`` (a closing impression's part of the label buffer) is inclusive at both ends,
    lowest first, ties by member."""
    async def go() -> list[object]:
        store = make_store()
        ws = [zmax("z", m, sc) for m, sc in (("d", 3.0), ("a", 1.0), ("c", 2.0), ("b", 2.0), ("e", 2.5e9))]
        await store.apply([Guarded("r", tuple(ws))])
        return await store.read([Read("zrangebetween", "z", (1.0, 2.0)), Read("zrangebetween", "z", (2.0, 2.0)),
                                 Read("zrangebetween", "z", (1.5, 3.5)), Read("zrangebetween", "z", (3.0 + 1e-9, 9e9)),
                                 Read("zrangebetween", "z", (4.0, 5.0))])

    assert asyncio.run(go()) == [[("a", 1.0), ("b", 2.0), ("c", 2.0)], [("b", 2.0), ("c", 2.0)],
                                 [("b", 2.0), ("c", 2.0), ("d", 3.0)], [("e", 2.5e9)], []]


def test_a_prepared_apply_applies_the_batch_it_is_given(make_store: Callable[[], Store]) -> None:
    """``prepare_apply`` only saves work: the next ``apply`` or ``apply_begin`` applies its own batch, whether it
    was the one prepared or another (the prepared one is then dropped, never applied)."""
    rng = random.Random(7)
    a, b, c = (tuple(random_writes(rng, 30)) for _ in range(3))

    async def go() -> tuple[list[object], str, list[object], str]:
        ref, store = MemoryStore(), make_store()
        ga, gb, gc = [Guarded("pa", a)], [Guarded("pb", b)], [Guarded("pc", c)]
        wa, wb = {0: 5}, {0: 9}
        store.prepare_apply(ga, wa)  # prepared and sent: applied once
        assert (await (await store.apply_begin(ga, wa)).result()).applied == 1
        store.prepare_apply(gb, wb)  # prepared, but another batch is sent: b is never applied
        assert (await (await store.apply_begin(gc, wa)).result()).applied == 1
        assert (await (await store.apply_begin(ga, wa)).result()).duplicates == 1  # a's mark is there
        store.prepare_apply(gb, wb)  # the same through apply
        assert (await store.apply(gc, wa)).duplicates == 1
        await ref.apply(ga, wa)
        await ref.apply(gc, wa)
        return (normalise(await store.read(READS)), await store.digest(),
                normalise(await ref.read(READS)), await ref.digest())

    got, digest, want, want_digest = asyncio.run(go())
    assert got == want
    assert digest == want_digest
