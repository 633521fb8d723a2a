"""The greedy MMR selection loop, compiled (numba), with the similarity rows computed inside it.

:func:`serving.mmr.mmr` owns the definition (normalised relevance, tie rules, the
penalty reported); this module only runs its loop.  Each step picks the open
candidate with the highest ``gain - weight * max_sim``, ties going to the higher
raw relevance, then the lower index; it then folds that candidate's similarity
row into ``max_sim``.  The rows are what :class:`serving.mmr.ItemSimilarity`
computes (``VECTOR_WEIGHT * clip(cosine, 0, 1) + CATEGORY_WEIGHT * jaccard``, or
the Jaccard alone without vectors), so a request never builds the similarity
matrix nor makes a dozen numpy calls per step.  The cosine's dot product sums in
its own (vectorised) order, as numpy's BLAS does in another: rows can differ from
``ItemSimilarity.__call__`` in the last bits (tested within 1e-12).

``select_rows`` runs the same loop in Python over any row callable (the generic
form of the similarity), and ``select_matrix`` over a full matrix.
"""

from __future__ import annotations

from typing import Callable

import numba
import numpy as np

from serving import compiled  # noqa: F401  (numba's cache directory; before the first compile)

VECTOR_WEIGHT = 0.7
CATEGORY_WEIGHT = 0.3

_EMPTY_UNIT = np.zeros((0, 0))
_EMPTY_CODES = np.zeros(0, dtype=np.int64)


def select_items(raw: np.ndarray, gain: np.ndarray, weight: float, take: int, unit: np.ndarray | None,
                 codes: np.ndarray | None, onehot: np.ndarray, sizes: np.ndarray) -> tuple[list[int], list[float]]:
    """(picked indices, each pick's max similarity to the earlier picks) over item vectors and categories."""
    picks = np.empty(take, dtype=np.int64)
    sims = np.empty(take, dtype=np.float64)
    u = _EMPTY_UNIT if unit is None else np.ascontiguousarray(unit, dtype=np.float64)
    c = _EMPTY_CODES if codes is None else np.ascontiguousarray(codes, dtype=np.int64)
    mode = 1 if codes is not None else 2
    _select(raw, gain, float(weight), take, mode, _EMPTY_UNIT, u, unit is not None, c,
            np.ascontiguousarray(onehot, dtype=np.float64), np.ascontiguousarray(sizes, dtype=np.float64),
            picks, sims)
    return picks.tolist(), sims.tolist()


def warm() -> None:
    """Compile (or load the cached compiled) loop now, e.g. in a thread at start-up, not on a first request."""
    raw = np.array([1.0, 0.5])
    select_items(raw, raw, 0.3, 2, np.eye(2), np.array([0, 1]), np.zeros((2, 0)), np.ones(2))


def select_matrix(raw: np.ndarray, gain: np.ndarray, weight: float, take: int,
                  matrix: np.ndarray) -> tuple[list[int], list[float]]:
    """The same over a full ``(n, n)`` similarity matrix."""
    picks = np.empty(take, dtype=np.int64)
    sims = np.empty(take, dtype=np.float64)
    _select(raw, gain, float(weight), take, 0, np.ascontiguousarray(matrix, dtype=np.float64), _EMPTY_UNIT, False,
            _EMPTY_CODES, _EMPTY_UNIT, np.zeros(0), picks, sims)
    return picks.tolist(), sims.tolist()


def select_rows(raw: np.ndarray, gain: np.ndarray, weight: float, take: int,
                row: Callable[[int], np.ndarray]) -> tuple[list[int], list[float]]:
    """The same loop in numpy over a row callable (only the ``take - 1`` rows needed are asked for)."""
    n = raw.shape[0]
    max_sim = np.zeros(n)
    score = gain.copy()
    open_gain = gain.copy()
    penalty = np.empty(n)
    picks: list[int] = []
    sims: list[float] = []
    for step in range(take):
        i = int(score.argmax())
        tied = score == score[i]
        if np.count_nonzero(tied) > 1:  # higher raw relevance, then lower index (argmax returns the first)
            tied_raw = np.where(tied, raw, -np.inf)
            i = int(np.argmax(tied_raw == tied_raw.max()))
        picks.append(i)
        open_gain[i] = -np.inf
        sims.append(float(max_sim[i]) if step > 0 else 0.0)
        if step + 1 < take:
            r = row(i)
            if step == 0:
                max_sim = r.copy()
            else:
                np.maximum(max_sim, r, out=max_sim)
            np.multiply(max_sim, weight, out=penalty)
            np.subtract(open_gain, penalty, out=score)
    return picks, sims


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _dot(a: np.ndarray, b: np.ndarray) -> float:  # pragma: no cover - compiled
    """Dot product; the sum may be reordered (vectorised), the inputs are finite unit vectors."""
    total = 0.0
    for d in range(a.shape[0]):
        total += a[d] * b[d]
    return total


@numba.njit(cache=True, nogil=True)
def _select(raw: np.ndarray, gain: np.ndarray, weight: float, take: int, mode: int, matrix: np.ndarray,
            unit: np.ndarray, has_unit: bool, codes: np.ndarray, onehot: np.ndarray, sizes: np.ndarray,
            picks: np.ndarray, sims: np.ndarray) -> None:  # pragma: no cover - compiled; tested through mmr
    """mode 0: rows of ``matrix``; 1: one category code per item (``codes``); 2: ``onehot`` categories."""
    n = raw.shape[0]
    max_sim = np.zeros(n)
    open_gain = gain.copy()
    score = gain.copy()
    row = np.empty(n)
    for step in range(take):
        best = 0
        for j in range(1, n):
            if score[j] > score[best] or (score[j] == score[best] and raw[j] > raw[best]):
                best = j
        picks[step] = best
        sims[step] = max_sim[best] if step > 0 else 0.0
        open_gain[best] = -np.inf
        if step + 1 == take:
            break
        i = best
        if mode == 0:
            for j in range(n):
                row[j] = matrix[i, j]
        else:
            for j in range(n):
                if mode == 1:
                    jac = 1.0 if codes[i] >= 0 and codes[j] == codes[i] else 0.0
                else:
                    inter = 0.0
                    for c in range(onehot.shape[1]):
                        inter += onehot[j, c] * onehot[i, c]
                    union = sizes[j] + sizes[i] - inter
                    jac = inter / union if union > 0 else 0.0
                if has_unit:
                    cos = min(max(_dot(unit[j], unit[i]), 0.0), 1.0)
                    row[j] = cos * VECTOR_WEIGHT + jac * CATEGORY_WEIGHT
                else:
                    row[j] = jac
        for j in range(n):
            m = row[j] if step == 0 else max(max_sim[j], row[j])
            max_sim[j] = m
            score[j] = open_gain[j] - m * weight
