"""Candidate sources and their merge: ANN over the user vector, item-to-item neighbours of
recent history, trending, fresh.

Each source yields ``(item_id, retrieval_score)`` best first.  :func:`merge`
walks the sources in priority order and keeps, from each, up to its quota of
items not excluded and not already taken by an earlier source (dedupe across
sources: an item keeps the first source that found it); the total is capped.

Retrieval scores: cosine similarity for ``ann`` and ``neighbours``;
``0.5 * (1 - rank / n)`` for ``trending`` and ``0.25 * (1 - rank / n)`` for
``fresh`` (rank-based), so the heuristic ranker prefers personal matches over
merely popular items, and popular over merely new ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from serving.item_index import ItemVectors

SOURCES = ("ann", "neighbours", "trending", "fresh")


@dataclass(frozen=True, slots=True)
class Candidate:
    item_id: str
    source: str
    retrieval_score: float


@dataclass(frozen=True, slots=True)
class SourceList:
    name: str
    items: Sequence[tuple[str, float]]  # best first


def merge(sources: Iterable[SourceList], quotas: Mapping[str, int], limit: int,
          exclude: set[str] | frozenset[str] = frozenset()) -> list[Candidate]:
    """Dedupe across sources (first source wins), at most ``quotas[name]`` each, ``limit`` in all."""
    out: list[Candidate] = []
    taken: set[str] = set()
    for src in sources:
        quota = quotas.get(src.name, 0)
        got = 0
        for item, score in src.items:
            if got >= quota or len(out) >= limit:
                break
            if item in taken or item in exclude:
                continue
            taken.add(item)
            out.append(Candidate(item, src.name, float(score)))
            got += 1
    return out


def ranked_scores(items: Sequence[str], top: float = 0.5) -> list[tuple[str, float]]:
    n = max(1, len(items))
    return [(i, top * (1.0 - r / n)) for r, i in enumerate(items)]


def user_vector(vectors: ItemVectors, history: Sequence[str], seeds: int) -> np.ndarray | None:
    """Mean of the unit vectors of the ``seeds`` most recent history items in the index."""
    known = [h for h in history if h in vectors.pos][:seeds]
    if not known:
        return None
    out: np.ndarray = vectors.rows(known).mean(axis=0, keepdims=True)
    return out


def ann_source(vectors: ItemVectors | None, history: Sequence[str], seeds: int, k: int) -> SourceList:
    if vectors is None or k <= 0:
        return SourceList("ann", [])
    q = user_vector(vectors, history, seeds)
    if q is None:
        return SourceList("ann", [])
    return SourceList("ann", vectors.search(q, k)[0])


def neighbour_source(vectors: ItemVectors | None, history: Sequence[str], seeds: int, k: int) -> SourceList:
    """Items most similar to each of the recent history items, interleaved by best similarity."""
    if vectors is None or k <= 0:
        return SourceList("neighbours", [])
    known = [h for h in history if h in vectors.pos][:seeds]
    if not known:
        return SourceList("neighbours", [])
    per_seed = max(4, -(-k // len(known)) + 1)
    best: dict[str, float] = {}
    for hits in vectors.search(vectors.rows(known), per_seed):
        for item, score in hits:
            if score > best.get(item, -2.0):
                best[item] = score
    return SourceList("neighbours", sorted(best.items(), key=lambda t: (-t[1], t[0])))
