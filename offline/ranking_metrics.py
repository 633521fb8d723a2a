"""Ranking metrics of the ranker's training and gate, in numpy: NDCG@k per group and on average, and a
paired bootstrap of two orderings' per-group differences.

NDCG uses LightGBM's definition (gain ``2**label - 1``, discount ``1 / log2(rank + 1)``, a group
without any relevant row counts as 1), so :func:`ndcg_at_k` is an independent check of LightGBM's
own ``ndcg@k``.  Pure: numpy only.
"""

from __future__ import annotations

import math

import numpy as np

EVAL_AT = (5, 10, 20)


def ndcg_at_k(scores: np.ndarray, labels: np.ndarray, group_ids: np.ndarray, k: int) -> float:
    """Mean NDCG@k over groups (LightGBM's definition; groups without relevant rows count as 1)."""
    if np.asarray(scores).size == 0:
        return math.nan
    return float(np.mean(ndcg_per_group(scores, labels, group_ids, k)))


def ndcg_per_group(scores: np.ndarray, labels: np.ndarray, group_ids: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k of every group, in ascending group-id order (for paired comparisons of two orderings)."""
    scores, labels, group_ids = np.asarray(scores, float), np.asarray(labels, float), np.asarray(group_ids)
    if scores.size == 0:
        return np.zeros(0)
    order = np.lexsort((-scores, group_ids))  # by group, then score descending (stable)
    g, s_lab = group_ids[order], labels[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ends = np.r_[starts[1:], g.size]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    values = []
    for a, b in zip(starts, ends):
        got = s_lab[a:b][:k]
        ideal = np.sort(s_lab[a:b])[::-1][:k]
        idcg = float(((2.0**ideal - 1.0) * discounts[: ideal.size]).sum())
        dcg = float(((2.0**got - 1.0) * discounts[: got.size]).sum())
        values.append(1.0 if idcg <= 0.0 else dcg / idcg)
    return np.asarray(values, dtype=float)


def paired_difference(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired groups and its bootstrap 95% interval."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if d.size == 0:
        return math.nan, math.nan, math.nan
    means = d[np.random.default_rng(seed).integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(d.mean()), float(lo), float(hi)


def ndcg_report(scores: np.ndarray, labels: np.ndarray, group_ids: np.ndarray) -> dict[str, float]:
    return {f"ndcg@{k}": ndcg_at_k(scores, labels, group_ids, k) for k in EVAL_AT}
