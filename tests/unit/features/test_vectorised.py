"""The numpy (all candidates at once) ``values`` equal the previous per-item code bit for bit."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import numpy as np
import pytest

from streams.dwell import histogram_quantile
from streams.features import item, registry, user_category, user_item
from streams.features.config import FeatureConfig
from streams.features.family import RawResults
from tests.unit.features import legacy_values
from tests.unit.features.eventgen import build_store, last_ts, make_events

CFG = FeatureConfig()
PAIRS = ((item.FAMILY, legacy_values.item_values),
         (user_item.FAMILY, legacy_values.user_item_values),
         (user_category.FAMILY, legacy_values.user_category_values))


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_vectorised_values_equal_the_per_item_path(seed: int) -> None:
    rng = random.Random(seed)
    events = make_events(seed, n=1500, n_users=3, n_items=25)
    store = build_store(events, CFG)
    end = last_ts(events)
    items = [f"i{rng.randrange(27)}" for _ in range(60)] + ["i0", "i0", "never"]  # repeats, unknowns
    for now in (end + timedelta(minutes=rng.randint(0, 600)), end - timedelta(days=rng.randint(1, 5))):
        for u in ("u0", "u1", "nobody"):
            for fam, old in PAIRS:
                reads = fam.reads(u, items, now, CFG)
                results = asyncio.run(store.read(reads))
                raw = dict(zip(reads, results))
                want = old(raw, u, items, now, CFG)
                for got in (fam.values(raw, u, items, now, CFG),
                            fam.values(RawResults(reads, results), u, items, now, CFG)):
                    assert list(got) == list(fam.names(CFG))
                    for name in fam.names(CFG):
                        assert got[name].dtype == np.float64 and got[name].shape == (len(items),)
                        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        names, X = registry.assemble(asyncio.run(store.read(registry.all_reads("u0", items, now, CFG))),
                                     "u0", items, now, CFG)
        assert X.shape == (len(items), len(names))


def test_empty_candidate_list() -> None:
    store = build_store(make_events(3, n=50), CFG)
    now = last_ts(make_events(3, n=50))
    reads = registry.all_reads("u0", [], now, CFG)
    names, X = registry.assemble(asyncio.run(store.read(reads)), "u0", [], now, CFG)
    assert X.shape == (0, len(names))


def test_histogram_quantiles_equal_the_scalar_function() -> None:
    rng = np.random.default_rng(7)
    nb = CFG.dwell_buckets.n
    counts = rng.integers(0, 4, size=(400, nb)) * (rng.random((400, nb)) < 0.15)
    counts[:20] = 0
    counts[20:40, :] = 0
    counts[20:40, -1] = rng.integers(1, 5, size=20)  # open last bucket only
    counts[40:60, :] = 0
    counts[40:60, 0] = rng.integers(1, 5, size=20)  # first (linear) bucket only
    counts = counts.astype(np.float64)
    for q in (0.01, 0.5, 0.9, 1.0):
        want = [histogram_quantile(row, q, CFG.dwell_buckets) for row in counts]
        np.testing.assert_array_equal(item.histogram_quantiles(counts, q, CFG), want)
