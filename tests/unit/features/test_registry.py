"""Registry: names, one-round-trip reads, assembled matrix, order independence, purity."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta

import numpy as np
import pytest

from streams.features import registry
from streams.features.config import FeatureConfig
from tests.unit.features.eventgen import build_store, family_values, last_ts, make_events

CFG = FeatureConfig()
ITEMS = ["i3", "i1", "i7", "nope", "i1"]


def test_names_are_unique_ordered_and_at_least_40() -> None:
    names = registry.feature_names(CFG)
    assert len(names) >= 40 and len(set(names)) == len(names)
    assert names == tuple(n for f in registry.FAMILIES for n in f.names(CFG))


def test_assemble_equals_each_family_and_reads_once() -> None:
    events = make_events(41, n=300)
    store = build_store(events, CFG)
    now = last_ts(events) + timedelta(minutes=1)
    reads = registry.all_reads("u1", ITEMS, now, CFG)
    assert len(reads) == len(set(reads))
    results = asyncio.run(store.read(reads))
    names, X = registry.assemble(results, "u1", ITEMS, now, CFG)
    assert X.shape == (len(ITEMS), len(names)) and X.dtype == np.float32
    for fam in registry.FAMILIES:
        vals = family_values(store, fam, "u1", ITEMS, now, CFG)
        for name, col in vals.items():
            np.testing.assert_array_equal(X[:, names.index(name)], col.astype(np.float32), err_msg=name)
    np.testing.assert_array_equal(X[1], X[4])  # same item twice -> same row
    with pytest.raises(ValueError, match="all_reads order"):
        registry.assemble(results[:-1], "u1", ITEMS, now, CFG)


def test_state_is_independent_of_order_batching_and_retries() -> None:
    events = make_events(42, n=400)
    metas, body = events[:7], events[7:]
    a = build_store(events, CFG, batch_size=13)
    b = build_store(metas + body[::-1] + body[:50], CFG, batch_size=100)
    assert asyncio.run(a.digest()) == asyncio.run(b.digest())
    c = build_store(metas + [e for e in body if e.event_id != body[0].event_id], CFG)
    assert asyncio.run(a.digest()) != asyncio.run(c.digest())


def test_pure_modules_import_no_adapters() -> None:
    code = ("import sys, streams.features, streams.features.replay, streams.labels, streams.dwell;"
            "bad = [m for m in ('redis', 'faust', 'aiokafka', 'fastapi') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
