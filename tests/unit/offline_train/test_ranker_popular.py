"""Backfilled groups widened to serving's ``popular`` source, and the popularity artifact.

* ``popular_items``: most positives strictly before a time, ties by lower index.
* ``hard_negative_groups(popular=...)``: a positive among the popular items counts as retrieved even
  outside the ANN top-k, popular negatives are sampled from that list (never a known positive), and
  every row's ``retrieval`` is the query cosine (the one scale serving uses for every source).
* ``write_popularity``: the file serving loads, in ``item_ids.json`` order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from offline.candidate_groups import hard_negative_groups, popular_items
from offline.train_pipeline import POPULARITY_FILE, write_popularity
from serving.item_index import POPULARITY_FILE as SERVING_POPULARITY_FILE


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_popular_items_count_positives_before_the_time_only() -> None:
    items = np.array([3, 3, 3, 1, 1, 2, 0, 0, 0, 0])
    times = np.array([0, 1, 2, 3, 4, 5, 10, 11, 12, 13], dtype=float)
    assert popular_items(items, times, 6.0, 5, 10).tolist() == [3, 1, 2]  # item 0's positives come later
    assert popular_items(items, times, 100.0, 5, 2).tolist() == [0, 3]
    assert popular_items(items, times, 0.0, 5, 3).tolist() == []


def test_popular_positives_count_as_retrieved_and_popular_negatives_are_sampled_from_the_list() -> None:
    rng = np.random.default_rng(0)
    items_v = _unit(rng.normal(size=(60, 8)))
    n = 30
    queries = _unit(rng.normal(size=(n, 8)))
    users = np.arange(n) % 3
    scores = queries @ items_v.T
    ranks = np.argsort(-scores, axis=1)
    pos_items = np.array([ranks[g, 55] for g in range(n)])  # never in the ANN top 10
    popular = np.unique(pos_items[: n // 2])[:8]
    kw = dict(n_hard=3, n_random=1, seed=0, candidate_k=10)
    without = hard_negative_groups(users, pos_items, np.arange(n, dtype=float), np.full(n, 2), queries, items_v,
                                   users, pos_items, **kw)  # type: ignore[arg-type]
    assert without.n_not_retrieved == n and without.group_ids.size == 0
    out = hard_negative_groups(users, pos_items, np.arange(n, dtype=float), np.full(n, 2), queries, items_v,
                               users, pos_items, popular=popular, n_popular=2, **kw)  # type: ignore[arg-type]
    taken = set(out.source_rows.tolist())
    assert taken == {g for g in range(n) if pos_items[g] in set(popular.tolist())}
    for gid, src in zip(np.unique(out.group_ids), out.source_rows):
        rows = np.flatnonzero(out.group_ids == gid)
        its, labels = out.item_ids[rows], out.labels[rows]
        negatives = set(its[labels == 0].tolist())
        assert not negatives & set(pos_items[users == users[src]].tolist())
        known = set(pos_items[users == users[src]].tolist())
        available = set(popular.tolist()) - known
        assert len(negatives & set(popular.tolist())) >= min(2, len(available))
        assert out.hard[rows].sum() <= 3 + 2 and len(rows) <= 1 + 3 + 2 + 1
        assert np.allclose(out.retrieval[rows], scores[src, its], atol=1e-6)


def test_write_popularity_counts_positives_in_item_order(tmp_path: Path) -> None:
    assert POPULARITY_FILE == SERVING_POPULARITY_FILE
    path = write_popularity(tmp_path, np.array([2, 2, 0]), 4)
    assert path.name == POPULARITY_FILE
    assert np.load(path, allow_pickle=False).tolist() == [1.0, 0.0, 2.0, 0.0]


def test_impression_groups_without_a_positive_are_dropped() -> None:
    from offline.ranker_data import _with_positive

    X = [np.array([float(k)]) for k in range(5)]
    got = _with_positive(X, [0, 0, 2, 0, 0], ["g1", "g1", "g2", "g2", "g3"], [1.0, 1.0, 2.0, 2.0, 3.0])
    assert got[2] == ["g2", "g2"] and got[1] == [2, 0] and [x[0] for x in got[0]] == [2.0, 3.0]


def test_popularity_prior_is_the_share_of_the_most_popular_items_count() -> None:
    from offline.candidate_groups import popularity_prior

    got = popularity_prior(np.array([0, 0, 1, 2]), np.array([0.0, 1, 2, 9]), 5.0, 3)
    assert got.tolist() == [1.0, 0.5, 0.0]
    assert popularity_prior(np.array([0]), np.array([9.0]), 5.0, 2).tolist() == [0.0, 0.0]


def test_impression_rows_turn_the_missing_feature_sentinel_back_into_nan(tmp_path: Path) -> None:
    from offline.ranker_data import MISSING_FEATURE, impression_rows
    from offline.snapshot import TimeRange, write_snapshot
    from serving.impressions import MISSING_FEATURE as SERVED_MISSING

    assert MISSING_FEATURE == SERVED_MISSING
    ex = [{"impression_ts": "2024-01-01T00:00:00+00:00", "group_id": "g", "user_id": "u", "item_id": i,
           "grade": grade, "feature_names": ["a", "retrieval_score"], "features": [value, 0.5]}
          for i, grade, value in (("x", 2, SERVED_MISSING), ("y", 0, 3.0))]
    snap = write_snapshot(tmp_path, [], ex, TimeRange(), "test")
    X, y, groups, _ = impression_rows(snap, ("a", "retrieval_score"))
    assert np.isnan(X[0][0]) and X[0][1] == 0.5 and X[1].tolist() == [3.0, 0.5]
    assert y == [2, 0] and groups == ["g", "g"]
