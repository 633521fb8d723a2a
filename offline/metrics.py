"""Top-k ranking metrics over a batch of users (binary relevance), numpy only.

Every metric takes a *hit matrix*: ``hits[u, j]`` is True when the item ranked at
position ``j`` (0-based) for user ``u`` is relevant, plus ``n_relevant[u]``, the
number of relevant (held-out) items of that user.  Metrics return one value per
user; :func:`ranking_metrics` averages them.

>>> ranked = np.array([[3, 1, 2], [0, 5, 4]])
>>> hits = hit_matrix(ranked, [np.array([1]), np.array([9])])
>>> hits.tolist()
[[False, True, False], [False, False, False]]
>>> round(float(ndcg_at_k(hits, np.array([1, 1]), 3)[0]), 4)
0.6309
>>> recall_at_k(hits, np.array([1, 1]), 3).tolist()
[1.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RankingMetrics:
    k: int
    n_users: int
    ndcg: float
    recall: float
    hr: float

    def as_dict(self) -> dict[str, float]:
        return {
            f"ndcg@{self.k}": self.ndcg,
            f"recall@{self.k}": self.recall,
            f"hr@{self.k}": self.hr,
        }


def hit_matrix(ranked: npt.NDArray[np.integer], relevant: Sequence[npt.NDArray[np.integer]]) -> BoolArray:
    """``hits[u, j] = ranked[u, j] in relevant[u]`` for a (n_users, k) matrix of item indices."""
    if ranked.ndim != 2 or ranked.shape[0] != len(relevant):
        raise ValueError(
            f"ranked must be (n_users, k) with one row per relevant set; got {ranked.shape} "
            f"for {len(relevant)} users"
        )
    return np.stack([np.isin(row, rel) for row, rel in zip(ranked, relevant)]) if len(relevant) else (
        np.zeros(ranked.shape, dtype=np.bool_)
    )


def _check(hits: BoolArray, k: int) -> BoolArray:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if hits.ndim != 2 or hits.shape[1] < k:
        raise ValueError(f"hits must be (n_users, >= k={k}) but has shape {hits.shape}")
    return hits[:, :k]


def dcg_discounts(k: int) -> FloatArray:
    """1 / log2(rank + 1) for ranks 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg_at_k(hits: BoolArray, n_relevant: npt.NDArray[np.integer], k: int) -> FloatArray:
    """Binary NDCG@k; the ideal DCG puts min(n_relevant, k) hits on top. 0 when n_relevant is 0."""
    h = _check(hits, k)
    disc = dcg_discounts(k)
    dcg = h.astype(np.float64) @ disc
    ideal_cum = np.concatenate([[0.0], np.cumsum(disc)])
    idcg = ideal_cum[np.minimum(np.asarray(n_relevant, dtype=np.int64), k)]
    out = np.zeros(h.shape[0], dtype=np.float64)
    np.divide(dcg, idcg, out=out, where=idcg > 0)
    return out


def recall_at_k(hits: BoolArray, n_relevant: npt.NDArray[np.integer], k: int) -> FloatArray:
    """Hits in the top k divided by the number of relevant items (0 when there are none)."""
    h = _check(hits, k)
    n = np.asarray(n_relevant, dtype=np.float64)
    out = np.zeros(h.shape[0], dtype=np.float64)
    np.divide(h.sum(axis=1).astype(np.float64), n, out=out, where=n > 0)
    return out


def hr_at_k(hits: BoolArray, k: int) -> FloatArray:
    """1.0 when at least one relevant item is in the top k, else 0.0."""
    return np.asarray(_check(hits, k).any(axis=1), dtype=np.float64)


def ranking_metrics(hits: BoolArray, n_relevant: npt.NDArray[np.integer], k: int) -> RankingMetrics:
    """Mean NDCG/Recall/HR@k over users (rows)."""
    if hits.shape[0] == 0:
        raise ValueError("no users to evaluate: every user needs at least one relevant item")
    return RankingMetrics(
        k=k,
        n_users=int(hits.shape[0]),
        ndcg=float(ndcg_at_k(hits, n_relevant, k).mean()),
        recall=float(recall_at_k(hits, n_relevant, k).mean()),
        hr=float(hr_at_k(hits, k).mean()),
    )


def top_k(scores: npt.NDArray[np.floating], k: int) -> IntArray:
    """Indices of the k highest scores per row, best first (ties broken by lower index)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    # lexsort: primary key is -score, secondary is the item index, for deterministic ties
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1).astype(np.int64)
