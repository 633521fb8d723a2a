"""Candidate sources and their merge on integer codes: :mod:`serving.candidates` without per-item strings.

Every item of a request gets one integer code (:class:`Codebook`): its row in the ANN
catalogue, or ``n, n + 1, ...`` (first seen first) for an id the catalogue does not
hold (e.g. a fresh item not yet indexed).  The index-backed sources (ANN, neighbours,
popular) yield rows straight from numpy; trending, fresh, the history and the client's
exclusions are mapped once each.  :func:`merge_coded` is :func:`serving.candidates.merge_ranked`
(first source wins, at most the quota per source, ``limit`` in all, excluded items never)
as a handful of array operations per source; ids are built once, for the merged
candidates only.  Every function here has a string twin in :mod:`serving.candidates`
that serves as its reference (``tests/unit/serving/test_candidate_rows.py`` checks they
agree on random inputs).  Pure: numpy and the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Iterable, Mapping, Sequence

import numpy as np

from serving.item_index import ItemVectors


@dataclass(frozen=True, slots=True)
class Coded:
    """A source as item codes and scores (parallel arrays), best first.  ``distinct``: no code repeats
    (sources read off the index are; lists from outside are checked)."""

    name: str
    codes: np.ndarray  # int64
    scores: np.ndarray  # float64
    distinct: bool = False


@dataclass(frozen=True, slots=True)
class MergedCodes:
    codes: np.ndarray  # int64, the merged candidates in order
    sources: list[str]  # the source of each
    scores: np.ndarray  # float64, each candidate's score in its source
    counts: dict[str, int]  # candidates per source

    def __len__(self) -> int:
        return len(self.codes)


class Codebook:
    """Item id <-> code for one request over ``vectors`` (the catalogue rows, then extras)."""

    def __init__(self, vectors: ItemVectors) -> None:
        self.vectors = vectors
        self.n = len(vectors.ids)
        self._extra: dict[str, int] = {}
        self._extra_ids: list[str] = []

    @property
    def size(self) -> int:
        """One past the largest code handed out so far."""
        return self.n + len(self._extra_ids)

    def codes(self, items: Sequence[str]) -> np.ndarray:
        out = np.fromiter(map(self.vectors.pos.get, items, repeat(-1)), dtype=np.int64, count=len(items))
        missing = np.flatnonzero(out < 0)
        if len(missing):
            extra = self._extra
            for j in missing.tolist():
                got = extra.get(items[j])
                if got is None:
                    got = extra[items[j]] = self.n + len(self._extra_ids)
                    self._extra_ids.append(items[j])
                out[j] = got
        return out

    def ids(self, codes: np.ndarray) -> list[str]:
        ids = self.vectors.ids
        if not self._extra_ids or not (codes >= self.n).any():
            at = codes.tolist()
            return list(itemgetter(*at)(ids)) if len(at) > 1 else [ids[c] for c in at]
        extra, n = self._extra_ids, self.n
        return [ids[c] if c < n else extra[c - n] for c in codes.tolist()]

    def rows(self, codes: np.ndarray) -> np.ndarray:
        """Catalogue rows of ``codes`` (-1 for items outside the catalogue): ``ItemVectors.positions``."""
        out: np.ndarray = np.where(codes < self.n, codes, -1)
        return out


def rank_scores(n: int, top: float = 0.5) -> np.ndarray:
    """``serving.candidates.rank_scores`` as an array."""
    out: np.ndarray = top * (1.0 - np.arange(n, dtype=np.float64) / max(1, n))
    return out


def merge_coded(sources: Iterable[Coded], quotas: Mapping[str, int], limit: int, exclude: np.ndarray,
                size: int) -> MergedCodes:
    """Dedupe across sources (first source wins), at most ``quotas[name]`` each, ``limit`` in all, never a code
    in ``exclude``; ``size``: one past the largest code (``Codebook.size``)."""
    taken = np.zeros(size, dtype=bool)
    taken[exclude] = True
    parts: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    names: list[str] = []
    counts: dict[str, int] = {}
    total = 0
    for src in sources:
        quota = min(quotas.get(src.name, 0), limit - total)
        if quota <= 0 or not len(src.codes):
            continue
        free = np.flatnonzero(~taken[src.codes])
        if not src.distinct and len(free) > 1:  # a repeated item counts once, where it first appears
            _, first = np.unique(src.codes[free], return_index=True)
            if len(first) != len(free):
                free = free[np.sort(first)]
        take = free[:quota]
        if not len(take):
            continue
        got = src.codes[take]
        taken[got] = True
        parts.append(got)
        scores.append(np.asarray(src.scores, dtype=np.float64)[take])
        names += [src.name] * len(take)
        counts[src.name] = len(take)
        total += len(take)
    if not parts:
        return MergedCodes(np.zeros(0, dtype=np.int64), [], np.zeros(0), {})
    return MergedCodes(np.concatenate(parts), names, np.concatenate(scores), counts)


def seed_rows(history: np.ndarray, n: int, seeds: int) -> np.ndarray:
    """The catalogue rows of the ``seeds`` most recent history items in the index (``candidates._seeds``)."""
    out: np.ndarray = history[history < n][:seeds]
    return out


def user_vector(vectors: ItemVectors, seeds: np.ndarray) -> np.ndarray | None:
    """``candidates.user_vector``: the mean of the seeds' unit vectors, or None without seeds."""
    if not len(seeds):
        return None
    out: np.ndarray = vectors.vectors[seeds].mean(axis=0, keepdims=True)
    return out


def ann_coded(vectors: ItemVectors, query: np.ndarray | None, k: int, seeds: np.ndarray | None = None) -> Coded:
    """``candidates.ann_ranked`` as rows.  With ``seeds`` (the rows ``query`` is the mean of, as
    :func:`user_vector` makes it) the search is remembered per index version (``ItemVectors.search_seeded``)."""
    if query is None or k <= 0:
        return Coded("ann", np.zeros(0, dtype=np.int64), np.zeros(0), True)
    if seeds is not None:
        found, sims = vectors.search_seeded(seeds.tolist(), k)
        return Coded("ann", found, sims, True)
    rows, scores = vectors.search_rows(query, k)
    keep = rows[0] >= 0
    return Coded("ann", rows[0][keep].astype(np.int64), scores[0][keep].astype(np.float64), True)


def neighbour_coded(vectors: ItemVectors, seeds: np.ndarray, k: int) -> Coded:
    """``candidates.neighbour_ranked`` as rows: the neighbours of each seed, an item at its best similarity,
    best first, equal similarities in item id order."""
    if k <= 0 or not len(seeds):
        return Coded("neighbours", np.zeros(0, dtype=np.int64), np.zeros(0), True)
    per_seed = max(4, -(-k // len(seeds)) + 1)
    hits = vectors.neighbours(seeds.tolist(), per_seed)
    rows = np.concatenate([h[0] for h in hits]).astype(np.int64)
    scores = np.concatenate([h[1] for h in hits]).astype(np.float64)
    order = np.lexsort((rows, -scores))  # best similarity first; an item keeps its best
    rows, scores = rows[order], scores[order]
    first = np.unique(rows, return_index=True)[1]
    rows, scores = rows[first], scores[first]
    by = np.lexsort((vectors.id_rank[rows], -scores))
    return Coded("neighbours", rows[by], scores[by], True)


def popular_coded(vectors: ItemVectors, k: int) -> Coded:
    """``candidates.popular_ranked`` as rows."""
    rows = vectors.popular_rows[:max(0, k)]
    return Coded("popular", rows, rank_scores(len(rows)), True)
