"""Backfilled groups with hard negatives, and a ranker that actually ranks.

* ``hard_negative_groups``: the positive must be retrievable (in the top ``candidate_k``), hard
  negatives come from that top ``candidate_k``, no known positive is a negative, rows are shuffled.
* ``history_queries``: serving's ANN query (mean of the latest history vectors before ``t``).
* The configured LambdaRank, on a small synthetic set whose right answer is known, beats random
  order and the retrieval-order baseline, and gives distinct scores within each group.
* ``baseline_check``: the gate's refusal of a ranker below retrieval order or one that ties everything.
"""

from __future__ import annotations

import numpy as np

from offline.candidate_groups import hard_negative_groups, history_queries
from offline.ranker_train import train_lambdarank
from offline.ranking_metrics import ndcg_at_k
from offline.train_pipeline import TrainConfig, baseline_check, tied_group_share


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _catalogue(n_items: int = 60, dim: int = 8, seed: int = 0) -> np.ndarray:
    return _unit(np.random.default_rng(seed).normal(size=(n_items, dim)))


def test_hard_negative_groups_take_negatives_from_the_retrieval_top_k_and_skip_unretrievable_positives() -> None:
    items_v = _catalogue()
    rng = np.random.default_rng(1)
    n = 40
    queries = _unit(rng.normal(size=(n, items_v.shape[1])))
    users = np.arange(n) % 5
    scores = queries @ items_v.T
    ranks = np.argsort(-scores, axis=1)
    # even groups: a positive at rank 3 (retrievable); odd groups: at rank 50 (not in the top 20)
    pos_items = np.array([ranks[g, 3] if g % 2 == 0 else ranks[g, 50] for g in range(n)])
    known_u = np.r_[users, [0, 0]]
    known_i = np.r_[pos_items, ranks[0, 0], ranks[0, 1]]  # user 0 also liked group 0's top two items
    out = hard_negative_groups(users, pos_items, np.arange(n, dtype=float), np.full(n, 2), queries, items_v,
                               known_u, known_i, n_hard=6, n_random=2, seed=0, candidate_k=20, group_id_start=100)
    assert out.n_not_retrieved == n // 2
    assert list(out.source_rows) == list(range(0, n, 2))  # time order kept
    assert np.array_equal(np.unique(out.group_ids), np.arange(100, 100 + n // 2))
    first_rows = []
    for gid, src in zip(np.unique(out.group_ids), out.source_rows):
        rows = np.flatnonzero(out.group_ids == gid)
        first_rows.append(rows[0])
        labels, its, hard = out.labels[rows], out.item_ids[rows], out.hard[rows]
        assert len(rows) == 1 + 6 + 2 and len(set(its)) == len(its)
        assert labels.sum() == 2 and its[labels > 0][0] == pos_items[src]
        mine = set(known_i[known_u == users[src]])
        assert not mine & set(its[labels == 0]), "a known positive was used as a negative"
        blocked = mine | {pos_items[src]}
        top20 = [i for i in ranks[src] if i not in blocked][:20]
        assert set(its[hard]) <= set(top20) and hard.sum() == 6
        assert np.allclose(out.retrieval[rows], scores[src, its], atol=1e-6)
        assert (out.times[rows] == src).all() and (out.user_ids[rows] == users[src]).all()
    positions = [int(np.flatnonzero(out.labels[out.group_ids == g] > 0)[0]) for g in np.unique(out.group_ids)]
    assert len(set(positions)) > 1, "the positive must not always be the first row of its group"
    again = hard_negative_groups(users, pos_items, np.arange(n, dtype=float), np.full(n, 2), queries, items_v,
                                 known_u, known_i, n_hard=6, n_random=2, seed=0, candidate_k=20, max_groups=5)
    assert len(np.unique(again.group_ids)) == 5 and list(again.source_rows) == list(range(30, 40, 2))


def test_history_queries_average_the_latest_history_strictly_before_the_time() -> None:
    items_v = _catalogue(10, 4)
    users_v = _unit(np.random.default_rng(3).normal(size=(2, 4)))
    hu = np.array([0, 0, 0, 1])
    hi = np.array([1, 2, 3, 4])
    ht = np.array([10.0, 20.0, 30.0, 5.0])
    q = history_queries(items_v, users_v, hu, hi, ht, np.array([0, 0, 1, 1]), np.array([30.0, 5.0, 6.0, 1.0]), seeds=2)
    assert np.allclose(q[0], _unit(items_v[[1, 2]].mean(axis=0, keepdims=True))[0])  # 30 excluded, latest 2
    assert np.allclose(q[1], users_v[0])  # no history yet: the user's own vector
    assert np.allclose(q[2], items_v[4])
    assert np.allclose(q[3], users_v[1])


def _synthetic_groups(n_groups: int, size: int, seed: int) -> tuple[np.ndarray, ...]:
    """One positive per group; retrieval_score is a noisy view of relevance, ``quality`` a second view
    that the ranker can combine with it (so the right answer beats retrieval order)."""
    rng = np.random.default_rng(seed)
    rows = n_groups * size
    g = np.repeat(np.arange(n_groups), size)
    y = np.zeros(rows, dtype=np.int64)
    y[np.arange(n_groups) * size + rng.integers(0, size, n_groups)] = 1
    retrieval = 0.5 * y + rng.normal(0, 0.5, rows)
    quality = 1.0 * y + rng.normal(0, 0.5, rows)
    noise = rng.normal(size=rows)
    X = np.c_[quality, noise, retrieval]
    return X, y, g, g.astype(float)


def test_trained_ranker_beats_random_and_retrieval_order_with_distinct_scores() -> None:
    X, y, g, t = _synthetic_groups(600, 12, seed=0)
    tr = train_lambdarank(X, y, g, t, ("quality", "noise", "retrieval_score"), TrainConfig().ranker)
    va = tr.valid_rows
    scores = tr.booster.predict(X[va], num_iteration=tr.best_iteration)
    random_order = np.mean([ndcg_at_k(np.random.default_rng(s).random(va.size), y[va], g[va], 10) for s in range(5)])
    retrieval_order = ndcg_at_k(X[va, 2], y[va], g[va], 10)
    ranker = ndcg_at_k(scores, y[va], g[va], 10)
    assert tr.best_iteration > 1
    assert ranker > random_order + 0.2
    assert ranker > retrieval_order + 0.05
    assert abs(ranker - tr.metrics["ndcg@10"]) < 1e-6
    assert tied_group_share(scores, g[va]) == 0.0
    per_group = [np.unique(scores[g[va] == k]).size for k in np.unique(g[va])]
    assert min(per_group) > 1 and np.mean(per_group) > 6, "scores within a group must vary"
    assert baseline_check(tr.metrics, {"ndcg@10": retrieval_order}, 0.0) is None


def test_baseline_check_refuses_a_ranker_below_retrieval_order_or_one_that_ties() -> None:
    assert baseline_check({"ndcg@10": 0.60}, {"ndcg@10": 0.60}, 0.0) is None  # at least as good
    below = baseline_check({"ndcg@10": 0.506}, {"ndcg@10": 0.527}, 0.0)
    assert below is not None and "below the retrieval order" in below and "0.5270" in below
    ties = baseline_check({"ndcg@10": 0.9}, {"ndcg@10": 0.5}, 0.8)
    assert ties is not None and "same score" in ties
    assert baseline_check({"ndcg@10": float("nan")}, {"ndcg@10": 0.5}, 0.0) is not None
    assert tied_group_share(np.array([1.0, 1.0, 2.0, 3.0, 5.0]), np.array([0, 0, 1, 1, 2])) == 0.5


def test_per_group_ndcg_and_paired_difference() -> None:
    from offline.ranking_metrics import ndcg_per_group, paired_difference
    y = np.array([1, 0, 0, 0, 1, 0])
    g = np.array([1, 1, 1, 0, 0, 0])
    good, bad = np.array([3.0, 2, 1, 1, 3, 2]), np.array([1.0, 2, 3, 3, 1, 2])
    per = ndcg_per_group(good, y, g, 10)
    assert per.shape == (2,) and np.allclose(per, 1.0)
    assert np.mean(ndcg_per_group(bad, y, g, 10)) == ndcg_at_k(bad, y, g, 10) < 1.0
    d, lo, hi = paired_difference(per, ndcg_per_group(bad, y, g, 10))
    assert d > 0 and lo <= d <= hi
    d0, lo0, hi0 = paired_difference(np.r_[0.1, 0.9], np.r_[0.9, 0.1])
    assert d0 == 0.0 and lo0 < 0.0 < hi0
