"""Candidate sources and their merge: ANN over the user vector, item-to-item neighbours of
recent history, long-window popular, trending, fresh.

Each source yields ``(item_id, retrieval_score)`` best first.  :func:`merge`
walks the sources in priority order and keeps, from each, up to its quota of
items not excluded and not already taken by an earlier source (dedupe across
sources: an item keeps the first source that found it); the total is capped.

Each source's own scores order it: cosine similarity for ``ann`` and ``neighbours``;
``0.5 * (1 - rank / n)`` for ``popular``/``trending`` and ``0.25 * (1 - rank / n)`` for
``fresh`` (rank-based).  The ``retrieval_score`` the ranker sees is one scale for
every source (:func:`query_scores`): the cosine of the user's ANN query and the
candidate's item vector, 0 for an item without a vector -- the same definition
``offline.ranker_data`` uses for every row of its training groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Iterable, Mapping, Sequence

import numpy as np

from serving.item_index import ItemVectors

SOURCES = ("ann", "popular", "neighbours", "trending", "fresh")


@dataclass(frozen=True, slots=True)
class Candidate:
    item_id: str
    source: str
    retrieval_score: float


@dataclass(frozen=True, slots=True)
class SourceList:
    name: str
    items: Sequence[tuple[str, float]]  # best first


@dataclass(frozen=True, slots=True)
class Ranked:
    """A source as two parallel lists (ids, scores), best first: no tuple per item."""

    name: str
    ids: Sequence[str]
    scores: Sequence[float]

    @classmethod
    def of(cls, src: SourceList) -> Ranked:
        return cls(src.name, [i for i, _ in src.items], [s for _, s in src.items])


@dataclass(frozen=True, slots=True)
class Merged:
    """The merged candidates as parallel lists."""

    ids: list[str]
    sources: list[str]
    scores: list[float]

    def __len__(self) -> int:
        return len(self.ids)


def merge_ranked(sources: Iterable[Ranked], quotas: Mapping[str, int], limit: int,
                 exclude: Iterable[str] = ()) -> Merged:
    """Dedupe across sources (first source wins), at most ``quotas[name]`` each, ``limit`` in all."""
    out = Merged([], [], [])
    ids, names, scores = out.ids, out.sources, out.scores
    taken = set(exclude)
    for src in sources:
        quota = min(quotas.get(src.name, 0), limit - len(ids))
        if quota <= 0:
            continue
        got = 0
        for item, score in zip(src.ids, src.scores):
            if item in taken:
                continue
            taken.add(item)
            ids.append(item)
            scores.append(float(score))
            got += 1
            if got >= quota:
                break
        names += [src.name] * got
    return out


def merge(sources: Iterable[SourceList], quotas: Mapping[str, int], limit: int,
          exclude: set[str] | frozenset[str] = frozenset()) -> list[Candidate]:
    """:func:`merge_ranked` as :class:`Candidate` objects."""
    m = merge_ranked((Ranked.of(s) for s in sources), quotas, limit, exclude)
    return [Candidate(i, n, sc) for i, n, sc in zip(m.ids, m.sources, m.scores)]


def ranked_scores(items: Sequence[str], top: float = 0.5) -> list[tuple[str, float]]:
    return list(zip(items, rank_scores(len(items), top)))


def rank_scores(n: int, top: float = 0.5) -> list[float]:
    """``top * (1 - rank / n)`` for ranks 0..n-1."""
    out: list[float] = (top * (1.0 - np.arange(n) / max(1, n))).tolist()
    return out


def _seeds(vectors: ItemVectors, history: Sequence[str], seeds: int) -> list[int]:
    pos = vectors.pos
    return [pos[h] for h in history if h in pos][:seeds]


def user_vector(vectors: ItemVectors, history: Sequence[str], seeds: int) -> np.ndarray | None:
    """Mean of the unit vectors of the ``seeds`` most recent history items in the index."""
    known = _seeds(vectors, history, seeds)
    if not known:
        return None
    out: np.ndarray = vectors.vectors[known].mean(axis=0, keepdims=True)
    return out


def query_scores(vectors: ItemVectors | None, query: np.ndarray | None, item_ids: Sequence[str],
                 at: np.ndarray | None = None) -> np.ndarray:
    """``retrieval_score`` of every candidate on one scale: cosine of the unit ``query`` and the item's
    unit vector; 0.0 (orthogonal: no evidence either way) for items without a vector or without a query.
    ``at``: the items' ``vectors.positions``, when the caller has them."""
    if vectors is None or query is None or not len(item_ids):
        return np.zeros(len(item_ids), dtype=np.float64)
    q = np.asarray(query, np.float64).reshape(-1)
    n = float(np.linalg.norm(q))
    if n <= 0.0:
        return np.zeros(len(item_ids), dtype=np.float64)
    out: np.ndarray = vectors.rows(item_ids, at).astype(np.float64) @ (q / n)
    return out


def popularity_scores(vectors: ItemVectors | None, item_ids: Sequence[str], at: np.ndarray | None = None) -> np.ndarray:
    """``popularity_prior_by_item`` of each candidate (``ItemVectors.popularity_share``; 0 without one)."""
    if vectors is None:
        return np.zeros(len(item_ids), dtype=np.float64)
    return vectors.popularity_share(item_ids, at)


def popular_ranked(vectors: ItemVectors | None, k: int) -> Ranked:
    """The long-window popular items published with the index (``ItemVectors.popular``), best first."""
    items = [] if vectors is None or k <= 0 else list(vectors.popular[:k])
    return Ranked("popular", items, rank_scores(len(items)))


def ann_ranked(vectors: ItemVectors | None, history: Sequence[str], seeds: int, k: int,
               query: np.ndarray | None = None) -> Ranked:
    """Inner-product search with ``query`` (default: :func:`user_vector` of the history)."""
    if vectors is None or k <= 0:
        return Ranked("ann", [], [])
    q = user_vector(vectors, history, seeds) if query is None else query
    if q is None:
        return Ranked("ann", [], [])
    rows, scores = vectors.search_rows(q, k)
    keep = rows[0] >= 0
    return Ranked("ann", _ids_at(vectors.ids, rows[0][keep].tolist()), scores[0][keep].tolist())


def _ids_at(ids: Sequence[str], rows: list[int]) -> list[str]:
    """``[ids[r] for r in rows]`` in one C call."""
    if len(rows) > 1:
        return list(itemgetter(*rows)(ids))
    return [ids[r] for r in rows]


def neighbour_ranked(vectors: ItemVectors | None, history: Sequence[str], seeds: int, k: int) -> Ranked:
    """Items most similar to each of the recent history items, interleaved by best similarity."""
    if vectors is None or k <= 0:
        return Ranked("neighbours", [], [])
    known = _seeds(vectors, history, seeds)
    if not known:
        return Ranked("neighbours", [], [])
    per_seed = max(4, -(-k // len(known)) + 1)
    hits = vectors.neighbours(known, per_seed)
    rows = np.concatenate([h[0] for h in hits])
    scores = np.concatenate([h[1] for h in hits]).astype(np.float64)
    order = np.lexsort((rows, -scores))  # best similarity first; an item keeps its best
    rows, scores = rows[order], scores[order]
    first = np.unique(rows, return_index=True)[1]
    ids = vectors.ids
    keep = np.sort(first)
    # ties in similarity are ordered by item id, as sorting (item, score) pairs by (-score, id) does
    pairs = sorted(zip(scores[keep].tolist(), [ids[r] for r in rows[keep].tolist()]), key=lambda t: (-t[0], t[1]))
    return Ranked("neighbours", [i for _, i in pairs], [sc for sc, _ in pairs])


def ann_source(vectors: ItemVectors | None, history: Sequence[str], seeds: int, k: int) -> SourceList:
    r = ann_ranked(vectors, history, seeds, k)
    return SourceList("ann", list(zip(r.ids, r.scores)))


def neighbour_source(vectors: ItemVectors | None, history: Sequence[str], seeds: int, k: int) -> SourceList:
    r = neighbour_ranked(vectors, history, seeds, k)
    return SourceList("neighbours", list(zip(r.ids, r.scores)))
