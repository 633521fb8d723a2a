from __future__ import annotations

import math

import numpy as np
import pytest

from offline.metrics import hit_matrix, hr_at_k, ndcg_at_k, ranking_metrics, recall_at_k, top_k


def test_hand_computed_values() -> None:
    # user 0: relevant {7, 9}, hits at ranks 1 and 3
    # user 1: relevant {4}, hit at rank 2
    # user 2: relevant {5, 6, 8}, no hit in the top 3
    ranked = np.array([[7, 1, 9], [0, 4, 2], [1, 2, 3]])
    relevant = [np.array([7, 9]), np.array([4]), np.array([5, 6, 8])]
    hits = hit_matrix(ranked, relevant)
    n_rel = np.array([2, 1, 3])

    ndcg = ndcg_at_k(hits, n_rel, 3)
    expected0 = (1 + 1 / 2) / (1 + 1 / math.log2(3))
    expected1 = (1 / math.log2(3)) / 1.0
    assert ndcg == pytest.approx([expected0, expected1, 0.0])
    assert recall_at_k(hits, n_rel, 3) == pytest.approx([1.0, 1.0, 0.0])
    assert hr_at_k(hits, 3) == pytest.approx([1.0, 1.0, 0.0])

    # at k=1 only user 0 scores
    assert ndcg_at_k(hits, n_rel, 1) == pytest.approx([1.0, 0.0, 0.0])
    assert recall_at_k(hits, n_rel, 1) == pytest.approx([0.5, 0.0, 0.0])

    m = ranking_metrics(hits, n_rel, 3)
    assert m.n_users == 3
    assert m.ndcg == pytest.approx((expected0 + expected1) / 3)
    assert m.as_dict() == {"ndcg@3": m.ndcg, "recall@3": m.recall, "hr@3": m.hr}


def test_ideal_dcg_is_capped_at_k() -> None:
    # 5 relevant items, all 3 slots hit: NDCG@3 must be exactly 1, recall 3/5
    hits = np.array([[True, True, True]])
    assert ndcg_at_k(hits, np.array([5]), 3) == pytest.approx([1.0])
    assert recall_at_k(hits, np.array([5]), 3) == pytest.approx([0.6])


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="k must be"):
        hr_at_k(np.zeros((1, 3), dtype=bool), 0)
    with pytest.raises(ValueError, match="shape"):
        ndcg_at_k(np.zeros((1, 2), dtype=bool), np.array([1]), 3)
    with pytest.raises(ValueError, match="no users"):
        ranking_metrics(np.zeros((0, 3), dtype=bool), np.array([], dtype=np.int64), 3)


def test_top_k_sorted_with_deterministic_ties() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.9, -1.0], [3.0, 2.0, 1.0, 0.0, 4.0]], dtype=np.float32)
    assert top_k(scores, 3).tolist() == [[1, 3, 2], [4, 0, 1]]
    assert top_k(scores, 10).shape == (2, 5)
