"""Incremental embeddings against their batch definition, step by step."""

from __future__ import annotations

import asyncio
import math
import random

import numpy as np
import pytest

from streams.embeddings import (contribution, decode_f32, encode_f32, log2_weight, logadd_state, mean_of,
                                reference_mean)
from streams.store import Guarded, Read
from streams.store_memory import MemoryStore
from streams.writes import vlogadd

H = 7 * 86400.0
EPOCH = 1704067200.0  # 2024-01-01


@pytest.mark.parametrize("seed", range(5))
def test_logadd_equals_batch_decayed_mean_at_every_step(seed: int) -> None:
    rng = np.random.default_rng(seed)
    acc: bytes | None = None
    vecs: list[np.ndarray] = []
    ws: list[float] = []
    ts: list[float] = []
    base = EPOCH - 26 * 365 * 86400 if seed % 2 else EPOCH + 3 * 365 * 86400  # 1998 and 2027: no under/overflow
    for _ in range(60):
        v = rng.normal(size=8)
        w = float(rng.choice([1.0, 2.0, 5.0]))
        t = base + float(rng.uniform(0, 60 * 86400))  # out of order
        acc, mean_bytes = logadd_state(acc, contribution(log2_weight(w, t, H, EPOCH), v))
        vecs.append(v), ws.append(w), ts.append(t)
        ref = reference_mean(vecs, ws, ts, H, max(ts))
        got = mean_of(acc)
        assert got is not None
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(decode_f32(mean_bytes), ref.astype(np.float32), rtol=1e-6, atol=1e-7)


def test_logadd_is_order_independent_up_to_rounding() -> None:
    rng = random.Random(3)
    payloads = [contribution(rng.uniform(-40, 40), np.array([rng.gauss(0, 1) for _ in range(4)])) for _ in range(50)]
    a = b = None
    for p in payloads:
        a = logadd_state(a, p)[0]
    for p in reversed(payloads):
        b = logadd_state(b, p)[0]
    np.testing.assert_allclose(mean_of(a), mean_of(b), rtol=1e-12)  # type: ignore[arg-type]


def test_memory_store_vlogadd_runs_the_reference_arithmetic() -> None:
    store = MemoryStore()
    p1 = contribution(3.0, np.array([1.0, 0.0]))
    p2 = contribution(1.0, np.array([0.0, 1.0]))
    asyncio.run(store.apply([Guarded("a", (vlogadd("acc", "mean", p1),)), Guarded("b", (vlogadd("acc", "mean", p2),))]))
    acc, mean = logadd_state(logadd_state(None, p1)[0], p2)
    got_acc, got_mean = asyncio.run(store.read([Read("get", "acc"), Read("get", "mean")]))
    assert (got_acc, got_mean) == (acc, mean)
    # weights 2^3 and 2^1: mean = (8*(1,0) + 2*(0,1)) / 10
    np.testing.assert_allclose(decode_f32(got_mean), [0.8, 0.2], rtol=1e-6)


def test_f32_codec_is_little_endian_and_checks_dimension() -> None:
    raw = encode_f32([1.0, -2.5])
    assert raw == np.array([1.0, -2.5], dtype="<f4").tobytes() and len(raw) == 8
    assert decode_f32(raw, 3) is None and decode_f32(b"abc") is None and decode_f32(None) is None
    assert decode_f32(encode_f32([math.nan, 1.0])) is None
