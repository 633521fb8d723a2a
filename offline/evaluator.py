"""Full-ranking evaluation of any scorer on a split: every item is a candidate except the
user's own training items; only users with at least one held-out item count."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from offline.interactions import Interactions
from offline.metrics import RankingMetrics, hit_matrix, ranking_metrics, top_k

Scorer = Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float32]]


def recommend(
    score: Scorer,
    train: Interactions,
    users: npt.NDArray[np.int64],
    k: int,
    batch_size: int = 1024,
    progress: bool = False,
    desc: str = "rank",
) -> npt.NDArray[np.int64]:
    """Top-k item indices per user, best first, with each user's training items excluded."""
    indptr, train_items, _ = train.csr()
    out = np.empty((len(users), min(k, train.n_items)), dtype=np.int64)
    starts = range(0, len(users), batch_size)
    for start in tqdm(starts, desc=desc, disable=not progress, leave=False):
        batch = users[start : start + batch_size]
        scores = np.array(score(batch), dtype=np.float32, copy=True)
        if scores.shape != (len(batch), train.n_items):
            raise ValueError(f"scorer returned shape {scores.shape}, expected {(len(batch), train.n_items)}")
        counts = indptr[batch + 1] - indptr[batch]
        rows = np.repeat(np.arange(len(batch)), counts)
        cols = np.concatenate([train_items[indptr[u] : indptr[u + 1]] for u in batch]) if len(batch) else rows
        scores[rows, cols] = -np.inf
        out[start : start + len(batch)] = top_k(scores, k)
    return out


def evaluate_scorer(
    score: Scorer,
    train: Interactions,
    test: Interactions,
    k: int = 10,
    progress: bool = False,
    desc: str = "rank",
) -> RankingMetrics:
    """NDCG/Recall/HR@k averaged over users with at least one test item."""
    relevant_by_user = test.items_by_user()
    users = np.flatnonzero(test.user_counts() > 0).astype(np.int64)
    ranked = recommend(score, train, users, k, progress=progress, desc=desc)
    relevant = [relevant_by_user[u] for u in users]
    hits = hit_matrix(ranked, relevant)
    n_relevant = np.array([len(r) for r in relevant], dtype=np.int64)
    return ranking_metrics(hits, n_relevant, k)
