"""Step 1 of a request: the candidates from the head read, by id or on the ANN catalogue's rows.

Without an index only trending and fresh items exist (the popular, ANN and neighbour sources come
with the index), merged by id (``serving.candidates``).  With one, every source yields catalogue
rows (``serving.candidate_rows``) and the merge is a few array operations per source; both give
what ``candidates.merge_ranked`` gives for the string sources.  ``Gatherer`` keeps the codes of
the last trending list per index, since the head reader hands out the same list object while the
trending head is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving import candidate_rows as by_row
from serving import candidates as cands
from serving.item_index import ItemVectors
from serving.live_read import Head
from streamrec.settings import Settings

Quotas = dict[str, int]


@dataclass(frozen=True)
class Gathered:
    """The merged candidates: ids, the source of each, catalogue rows (None without an index), the
    ANN query (None for cold start or without an index) and the count per source (rows only)."""

    ids: list[str]
    sources: list[str]
    rows: np.ndarray | None
    query: np.ndarray | None
    counts: dict[str, int] | None


def quotas_for(s: Settings, k: int, cold: bool, n_trending: int) -> Quotas:
    """Per-source quotas.  Cold start: popular, then trending; fresh items only fill in when too few
    items trend."""
    if cold:
        return {"popular": s.serving_quota_trending,
                "trending": s.serving_quota_trending + s.serving_quota_ann + s.serving_quota_neighbours,
                "fresh": max(0, 3 * k - n_trending)}
    return {"ann": s.serving_quota_ann, "popular": s.serving_quota_trending,
            "neighbours": s.serving_quota_neighbours, "trending": s.serving_quota_trending,
            "fresh": s.serving_quota_fresh}


def by_id(head: Head, quotas: Quotas, exclude: set[str], max_candidates: int) -> Gathered:
    trending = cands.Ranked("trending", head.trending, cands.rank_scores(len(head.trending)))
    fresh = cands.Ranked("fresh", head.fresh, cands.rank_scores(len(head.fresh), 0.25))
    found = cands.merge_ranked([trending, fresh], quotas, max_candidates, exclude)
    return Gathered(found.ids, found.sources, None, None, None)


class Gatherer:
    """``by_row`` with the trending list's codes remembered (same list object on the same index)."""

    def __init__(self) -> None:
        self._trending_codes: tuple[list[str], ItemVectors, np.ndarray] | None = None

    def trending_codes(self, book: by_row.Codebook, trending: list[str], vectors: ItemVectors) -> np.ndarray:
        memo = self._trending_codes
        if memo is not None and memo[0] is trending and memo[1] is vectors:
            return memo[2]
        top = book.codes(trending)
        if (top < book.n).all():  # codes outside the catalogue are per request: those are not kept
            top.flags.writeable = False
            self._trending_codes = (trending, vectors, top)
        return top

    def by_row(self, s: Settings, vectors: ItemVectors, request_exclude: frozenset[str], head: Head,
               quotas: Quotas, exclude: set[str], cold: bool) -> Gathered:
        book = by_row.Codebook(vectors)
        history = book.codes(head.history)
        excluded = np.concatenate([history, book.codes(list(request_exclude))])
        top = self.trending_codes(book, head.trending, vectors)
        trending = by_row.Coded("trending", top, by_row.rank_scores(len(head.trending)))
        fresh = by_row.Coded("fresh", book.codes(head.fresh), by_row.rank_scores(len(head.fresh), 0.25))
        popular = by_row.popular_coded(vectors, s.serving_quota_trending + len(exclude))
        query = None
        if cold:
            sources = [popular, trending, fresh]
        else:
            seeds = by_row.seed_rows(history, book.n, s.serving_history_seeds)
            query = by_row.user_vector(vectors, seeds)
            sources = [by_row.ann_coded(vectors, query, s.serving_quota_ann + len(exclude), seeds), popular,
                       by_row.neighbour_coded(vectors, seeds, s.serving_quota_neighbours), trending, fresh]
        merged = by_row.merge_coded(sources, quotas, s.serving_max_candidates, excluded, book.size)
        return Gathered(book.ids(merged.codes), merged.sources, book.rows(merged.codes), query, merged.counts)
