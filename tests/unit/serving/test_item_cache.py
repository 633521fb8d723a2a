"""The item-row cache: TTL, growth, refresh order (pure; no network)."""

import numpy as np

from serving.item_cache import ItemRows


def test_rows_come_back_until_they_are_older_than_the_ttl() -> None:
    c = ItemRows(width=2, ttl_s=10.0, capacity=1)
    c.put(["a", "b"], np.array([[1, 2], [3, 4]], dtype=np.float32), now_s=100.0)
    slots, misses = c.lookup(["b", "x", "a"], now_s=105.0)
    assert misses == [1]
    np.testing.assert_array_equal(c.rows[slots[[0, 2]]], [[3, 4], [1, 2]])
    assert c.lookup(["a"], now_s=110.5)[1] == [0]  # stale counts as a miss
    c.put(["a"], np.array([[5, 6]], dtype=np.float32), now_s=111.0)
    slots, misses = c.lookup(["a", "b"], now_s=111.0)
    assert misses == [1] and c.rows[slots[0]].tolist() == [5, 6] and len(c) == 2


def test_oldest_skips_recomputed_rows_and_ttl_zero_caches_nothing() -> None:
    c = ItemRows(width=1, ttl_s=60.0)
    c.put(["a", "b", "c"], np.zeros((3, 1), dtype=np.float32), now_s=0.0)
    c.put(["b"], np.ones((1, 1), dtype=np.float32), now_s=30.0)
    assert c.oldest(now_s=50.0, older_than_s=45.0, limit=10) == ["a", "c"]
    assert c.oldest(now_s=80.0, older_than_s=45.0, limit=10) == ["b"]
    off = ItemRows(width=1, ttl_s=0.0)
    off.put(["a"], np.zeros((1, 1), dtype=np.float32), now_s=0.0)
    assert len(off) == 0 and off.lookup(["a"], 0.0)[1] == [0]


def test_a_full_cache_starts_over() -> None:
    c = ItemRows(width=1, ttl_s=60.0, max_items=3)
    c.put(["a", "b", "c"], np.zeros((3, 1), dtype=np.float32), now_s=0.0)
    c.put(["d", "e"], np.ones((2, 1), dtype=np.float32), now_s=1.0)
    assert sorted(c.slot) == ["d", "e"]
    assert c.lookup(["a", "d"], 1.0)[1] == [0]


def test_rows_computed_at_a_later_clock_are_not_used_for_an_earlier_request() -> None:
    import numpy as np

    from serving.item_cache import ItemRows

    rows = ItemRows(2, 60.0, 10)
    rows.put(["a"], np.ones((1, 2), dtype=np.float32), 1000.0)
    assert rows.lookup(["a"], 1030.0)[1] == []  # within the TTL
    assert rows.lookup(["a"], 1100.0)[1] == [0]  # older than the TTL
    assert rows.lookup(["a"], 500.0)[1] == [0]  # computed "in the future" of this request's clock


def test_lookup_by_catalogue_row_equals_the_lookup_by_id() -> None:
    rng = np.random.default_rng(5)
    catalogue = tuple(f"i{j}" for j in range(60))
    pos = {i: r for r, i in enumerate(catalogue)}
    c = ItemRows(width=1, ttl_s=30.0, max_items=50, capacity=4)
    now, hits = 1000.0, 0
    for step in range(300):
        now += float(rng.uniform(0, 3))
        if rng.random() < 0.5:  # new and known items, inside and outside the catalogue; sometimes past max_items
            put = [f"i{j}" if rng.random() < 0.8 else f"x{j}" for j in rng.integers(0, 70, int(rng.integers(1, 12)))]
            c.put(put, np.zeros((len(put), 1), dtype=np.float32), now - float(rng.uniform(0, 40)))
        items = [f"i{j}" if rng.random() < 0.8 else f"x{j}" for j in rng.integers(0, 70, int(rng.integers(0, 40)))]
        rows = np.array([pos.get(i, -1) for i in items], dtype=np.int64)
        by_id, miss_id = c.lookup(items, now)
        by_row, miss_row = c.lookup_rows(items, rows, catalogue, now)
        assert by_row.tolist() == by_id.tolist() and miss_row == miss_id, step
        hits += int((by_id >= 0).sum())
    assert c.generation > 0 and hits > 100  # the walk saw hits, misses and clears
