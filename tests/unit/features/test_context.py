"""Context family against an independent epoch-arithmetic reference."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import numpy as np

from streams.features import context
from streams.features.config import EMPTY_CONTEXT, FeatureConfig
from streams.store_memory import MemoryStore
from tests.unit.features.eventgen import build_store, family_values, make_events


def test_context_matches_epoch_reference() -> None:
    rng = random.Random(31)
    store = MemoryStore()
    cfg = FeatureConfig()
    for _ in range(200):
        now = datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=rng.uniform(0, 2e8))
        got = family_values(store, context.FAMILY, "u", ["a", "b"], now, cfg)
        t = now.timestamp()
        hour = (t % 86400) / 3600
        day = ((t // 86400 + 3) % 7) + hour / 24  # 1970-01-01 was a Thursday (Mon=0)
        ref = [math.sin(2 * math.pi * hour / 24), math.cos(2 * math.pi * hour / 24),
               math.sin(2 * math.pi * day / 7), math.cos(2 * math.pi * day / 7)]
        for name, r in zip(context.NAMES, ref):
            np.testing.assert_allclose(got[name], [r, r], atol=1e-9, err_msg=name)


def test_context_has_no_state() -> None:
    events = make_events(32, n=50)
    cfg = FeatureConfig()
    assert all(context.writes(e, cfg, EMPTY_CONTEXT) == [] for e in events)
    store = build_store(events, cfg)
    now = datetime(2025, 3, 5, 6, 0, tzinfo=timezone.utc)
    a = family_values(store, context.FAMILY, "u0", ["i0"], now, cfg)
    b = family_values(MemoryStore(), context.FAMILY, "u0", ["i0"], now, cfg)
    assert all(np.array_equal(a[n], b[n]) for n in context.NAMES)
    assert a["hour_of_day_sin_by_context"][0] == 1.0  # 06:00 UTC
