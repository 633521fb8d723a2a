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


def test_categories_are_cached_with_the_item_row_and_unknown_ones_are_read_live() -> None:
    store = _store()
    items = ["i0", "i1", "new"]
    f = FeatureFetcher(store.read, item_ttl_s=60.0)
    assert asyncio.run(f.fetch("u", items, NOW)).categories == [("c0",), ("c1",), ()]
    later = [ItemMeta(event_id="m0b", ts=NOW, item_id="i0", categories=["c7"]),
             ItemMeta(event_id="mnew", ts=NOW, item_id="new", categories=["c5", "c6"])]
    asyncio.run(apply_events(store, later))
    soon = NOW + timedelta(seconds=30)
    # "new" had no stored category list, so it is read again and shows at once; i0's list is cached with its row
    got = asyncio.run(f.fetch("u", items, soon))
    assert got.categories == [("c0",), ("c1",), ("c5", "c6")]
    _, ref = assemble(asyncio.run(store.read(all_reads("u", ["new"], soon))), "u", ["new"], soon)
    live_cols = [j for j, n in enumerate(feature_names()) if not n.endswith("_by_item")]  # item rows: cached
    np.testing.assert_array_equal(got.matrix[2:, live_cols], ref[:, live_cols])
    # after the TTL the row (and with it the category list) is read again
    after = NOW + timedelta(seconds=61)
    got = asyncio.run(f.fetch("u", items, after))
    assert got.categories[0] == ("c7",)
    _, ref = assemble(asyncio.run(store.read(all_reads("u", items, after))), "u", items, after)
    np.testing.assert_array_equal(got.matrix, ref)


def test_partly_cached_candidates_equal_assemble_by_id_and_by_catalogue_row() -> None:
    store = _store()
    items = ["i3", "i0", "unknown", "i1", "i2"]
    _, ref = assemble(asyncio.run(store.read(all_reads("u", items, NOW))), "u", items, NOW)
    catalogue = ("i2", "i1", "x", "i0", "i3")
    rows = np.array([catalogue.index(i) if i in catalogue else -1 for i in items], dtype=np.int64)
    for by_row in (False, True):
        f = FeatureFetcher(store.read, item_ttl_s=60.0)
        assert asyncio.run(f.warm(["i1", "i3"], NOW)) == 2  # two of the five hit the cache, three miss
        got = asyncio.run(f.fetch("u", items, NOW, rows=rows, catalogue=catalogue) if by_row
                          else f.fetch("u", items, NOW))
        np.testing.assert_array_equal(got.matrix, ref)
        assert f.cached_count() == 5
        again = asyncio.run(f.fetch("u", items, NOW, rows=rows, catalogue=catalogue))  # every row cached now
        np.testing.assert_array_equal(again.matrix, ref)
