"""The serving fetch gives exactly registry.assemble's matrix, in the model's order (MemoryStore, no network)."""

import asyncio
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from schemas.events import Click, ItemMeta, View
from serving.feature_fetch import FeatureFetcher
from serving.ranker import FeatureMismatch, HeuristicRanker
from serving.scoring import RETRIEVAL, columns_matrix, matrix_for
from streams.features.registry import all_reads, assemble, feature_names
from streams.features.replay import apply_events
from streams.store_memory import MemoryStore

NOW = datetime(2024, 3, 2, 12, tzinfo=timezone.utc)


def _store() -> MemoryStore:
    store = MemoryStore("t")
    evs = [ItemMeta(event_id=f"m{i}", ts=NOW - timedelta(days=1), item_id=f"i{i}", categories=[f"c{i % 2}"])
           for i in range(4)]
    evs += [View(event_id=f"v{j}", ts=NOW - timedelta(minutes=j), user_id="u", item_id=f"i{j % 4}", dwell_ms=j * 900)
            for j in range(20)]
    evs += [Click(event_id="c1", ts=NOW - timedelta(minutes=3), user_id="u", item_id="i2")]
    asyncio.run(apply_events(store, evs))
    return store


@pytest.mark.parametrize("ttl", [0.0, 60.0])
def test_fetch_equals_assemble_and_keeps_model_order(ttl: float) -> None:
    store = _store()
    items = ["i0", "i1", "i2", "i3", "unknown"]
    _, ref = assemble(asyncio.run(store.read(all_reads("u", items, NOW))), "u", items, NOW)
    f = FeatureFetcher(store.read, item_ttl_s=ttl)
    for _ in range(2):  # second call hits the item cache when ttl > 0
        got = asyncio.run(f.fetch("u", items, NOW))
        assert got.names == feature_names()
        np.testing.assert_array_equal(got.matrix, ref)
    assert got.categories[:4] == [("c0",), ("c1",), ("c0",), ("c1",)] and got.categories[4] == ()


def test_columns_are_reordered_into_the_rankers_order_and_names_checked() -> None:
    cols = ("a", "b", RETRIEVAL)
    full = columns_matrix(np.array([[1.0, 2.0]], dtype=np.float32), np.array([3.0]))
    r = HeuristicRanker(feature_names=(RETRIEVAL, "a"))
    np.testing.assert_array_equal(matrix_for(r, cols, full), [[3.0, 1.0]])
    with pytest.raises(FeatureMismatch, match="missing_feature"):
        matrix_for(HeuristicRanker(feature_names=("a", "missing_feature")), cols, full)


def test_warmed_and_refreshed_rows_equal_live_ones() -> None:
    store = _store()
    items = ["i0", "i1", "i2", "i3"]
    _, ref = assemble(asyncio.run(store.read(all_reads("u", items, NOW))), "u", items, NOW)
    f = FeatureFetcher(store.read, item_ttl_s=60.0)
    assert asyncio.run(f.warm(items, NOW)) == 4 and f.cached_count() == 4
    np.testing.assert_array_equal(asyncio.run(f.fetch("u", items, NOW)).matrix, ref)
    assert asyncio.run(f.refresh_oldest(NOW)) == 0  # nothing is old yet
    later = NOW + timedelta(seconds=50)
    assert asyncio.run(f.refresh_oldest(later, batch=2)) == 2
    assert sorted(asyncio.run(f.fetch("u", items, later)).age_s.tolist()) == [0.0, 0.0, 50.0, 50.0]
