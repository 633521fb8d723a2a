"""The recommendation pipeline: candidates -> features -> score -> MMR -> impression.

No HTTP here (routes are thin) and no ranking math beyond calling the pure
modules.  Every Redis round trip of a request must finish within ``serving_budget_ms``;
a failure or an overrun opens the breaker and the request is answered from the
cached trending list with ``degraded=True`` (see ``serving.degrade``).

Unknown users (no history) get the long-window popular items (published with the
index by the last training run), then trending and fresh ones, in that order and
diversified across categories by MMR; once their first events are applied
(``min_watermark`` gives read-your-writes) they get the personal path: ANN over the
user vector, popular items, neighbours of recent history, trending and fresh, all
with ``retrieval_score`` = cosine to the user's ANN query, then the ranker.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Sequence, TypeVar

import numpy as np

from serving import candidates as cands
from serving import gather
from serving.degrade import Breaker, TrendingCache
from serving.feature_fetch import FeatureFetcher, Features
from serving.gather import Gatherer
from serving.impressions import ImpressionLogger, Pending
from serving.item_index import IndexHolder
from serving.metrics import Metrics
from serving.mmr import ItemSimilarity, mmr
from serving.ranker import FeatureMismatch, top_contributions
from serving.scoring import ModelHolder, columns_matrix, matrix_for
from streams import keys
from streams.store import Read, StoreUnavailable
from streamrec.settings import Settings

COLD_START_VERSION = "cold-start-trending"
DEGRADED_VERSION = "degraded-trending"
ReadFn = Callable[[Sequence[Read]], Awaitable[list[Any]]]
T = TypeVar("T")


class OverBudget(Exception):
    pass


@dataclass(frozen=True)
class RecRequest:
    user_id: str
    k: int
    request_id: str
    lam: float | None  # None: settings' default (cold start: serving_cold_start_lambda)
    explain: bool = False
    exclude: frozenset[str] = frozenset()
    categories_in: frozenset[str] | None = None
    categories_out: frozenset[str] = frozenset()


@dataclass
class Item:
    item_id: str
    score: float
    source: str
    explain: dict[str, Any] | None = None


@dataclass
class Result:
    items: list[Item]
    model_version: str
    degraded: bool = False
    cold_start: bool = False
    timings: dict[str, float] = field(default_factory=dict)  # stage -> ms


@dataclass
class Pipeline:
    settings: Settings
    read: ReadFn
    fetcher: FeatureFetcher
    models: ModelHolder
    index: IndexHolder
    breaker: Breaker
    trending: TrendingCache
    impressions: ImpressionLogger
    metrics: Metrics
    gatherer: Gatherer = field(default_factory=Gatherer)

    async def _redis(self, coro: Awaitable[T]) -> T:
        """One Redis round trip within ``serving_budget_ms`` (the budget is per round trip)."""
        try:
            async with asyncio.timeout(self.settings.serving_budget_ms / 1000.0):
                return await coro
        except TimeoutError as err:
            raise OverBudget() from err

    async def _bounded(self, reads: Sequence[Read]) -> list[Any]:
        """The reader, with the Redis budget applied to the round trip (not to the Python work)."""
        result: list[Any] = await self._redis(self.read(reads))
        return result

    def _stage(self, timings: dict[str, float], name: str, since: float) -> float:
        now = time.perf_counter()
        self.metrics.observe(name, now - since)
        timings[name] = (now - since) * 1000.0
        return now

    async def recommend(self, req: RecRequest) -> Result:
        t0 = time.perf_counter()
        if not self.breaker.allow():
            return self._degraded(req, "breaker_open", t0)
        try:
            res = await self._personal(req, t0)
        except (StoreUnavailable, OverBudget, ConnectionError, OSError) as err:
            self.breaker.failure(slow=isinstance(err, OverBudget))
            return self._degraded(req, "over_budget" if isinstance(err, OverBudget) else "redis_down", t0)
        self.breaker.success()
        res.timings["total"] = (time.perf_counter() - t0) * 1000.0
        self.metrics.observe("total", res.timings["total"] / 1000.0)
        return res

    async def _personal(self, req: RecRequest, t0: float) -> Result:
        s, timings = self.settings, dict[str, float]()
        depth = s.serving_quota_trending + s.serving_quota_ann + s.serving_quota_neighbours + len(req.exclude)
        head = await self._redis(self.fetcher.live.head(req.user_id, min(depth, 3000),
                                                        s.serving_quota_fresh + len(req.exclude)))
        history = head.history
        cold = not history
        vectors = self.index.current
        exclude = set(req.exclude)
        exclude.update(history)
        quotas = gather.quotas_for(s, req.k, cold, len(head.trending))
        if vectors is None:
            got = gather.by_id(head, quotas, exclude, s.serving_max_candidates)
            self.metrics.count_sources(got.sources)
        else:  # the same candidates, on catalogue rows (serving.candidate_rows)
            got = self.gatherer.by_row(s, vectors, req.exclude, head, quotas, exclude, cold)
            self.metrics.count_source_totals(got.counts or {})
        ids, source_of, at, query = got.ids, got.sources, got.rows, got.query
        # one scale for every source, what the ranker is trained on (cold start: no query, 0)
        unified = cands.query_scores(vectors, query, ids, at)
        t = self._stage(timings, "candidates", t0)

        now = self.feature_now(head.clock)
        feats: Features = await self.fetcher.fetch(req.user_id, ids, now, self._redis, at,
                                                   None if vectors is None else vectors.ids)
        if req.categories_in is None and not req.categories_out:
            keep = list(range(len(ids)))
        else:
            keep = [j for j, cats in enumerate(feats.categories) if _passes(cats, req)]
        t = self._stage(timings, "features", t)

        whole = len(keep) == len(ids)
        retrieval = unified if whole else unified[keep]
        kept_ids = ids if whole else [ids[j] for j in keep]
        kept_at = None if at is None else (at if whole else at[keep])
        prior = cands.popularity_scores(vectors, kept_ids, kept_at)
        base = feats.matrix if whole else feats.matrix[keep]
        loaded = self.models.current
        ranker, version = loaded.ranker, loaded.ranker.version
        try:
            X = self.models.matrix(ranker, base, retrieval, prior)
        except FeatureMismatch:
            self.metrics.fallbacks.labels(reason="feature_mismatch").inc()
            ranker = self.models.heuristic.ranker
            version, X = ranker.version, columns_matrix(base, retrieval, prior)
        if cold:  # the merge order: popular, then trending, then fresh
            relevance = np.asarray(cands.rank_scores(len(ids), 1.0), dtype=np.float64)[keep]
            version = COLD_START_VERSION
        else:
            relevance = ranker.score(X) if len(keep) else np.zeros(0)
        t = self._stage(timings, "score", t)

        vec = None if (cold or vectors is None) else vectors.rows(kept_ids, kept_at)
        lam = req.lam if req.lam is not None else (
            s.serving_cold_start_lambda if cold else s.serving_mmr_lambda)
        codes = feats.category_sets.single_codes(feats.category_ids if whole else feats.category_ids[keep])
        sim = ItemSimilarity.build(vec, [feats.categories[j] for j in keep]) if codes is None else \
            ItemSimilarity.from_codes(vec, codes)
        picked = mmr(relevance, sim, req.k, lam)
        rows = list(picked.indices)
        items = [Item(kept_ids[j], float(relevance[j]), source_of[keep[j]]) for j in rows]
        if req.explain and rows:
            contrib = None if cold else ranker.contributions(X[rows])
            names = ranker.feature_names
            for n, (j, item) in enumerate(zip(rows, items)):
                item.explain = {
                    "source": item.source,
                    "retrieval_score": float(retrieval[j]),
                    "mmr_penalty": picked.penalties[n],
                    "mmr_max_similarity": picked.max_similarity[n],
                    "feature_age_s": float(feats.age_s[keep[j]]),
                    "contributions": [] if contrib is None else
                    [{"feature": f, "value": v} for f, v in top_contributions(contrib[n], names, 5)],
                    "relevance": "popular, then trending (cold start)" if cold else "ranker",
                }
        self._stage(timings, "mmr", t)
        self.impressions.log(Pending(req.user_id, req.request_id, now, tuple(i.item_id for i in items),
                                     version, tuple(ranker.feature_names), X[rows] if rows else X[:0]))
        return Result(items, version, cold_start=cold, timings=timings)

    def _degraded(self, req: RecRequest, reason: str, t0: float) -> Result:
        self.metrics.fallbacks.labels(reason=reason).inc()
        pool = [t for t in self.trending.items if t.item_id not in req.exclude and _passes(t.categories, req)]
        pool = pool[: max(req.k * 5, 100)]
        rel = np.array([1.0 - r / max(1, len(pool)) for r in range(len(pool))])
        lam = self.settings.serving_cold_start_lambda if req.lam is None else req.lam
        picked = mmr(rel, ItemSimilarity.build(None, [p.categories for p in pool]), req.k, lam)
        items = [Item(pool[j].item_id, float(rel[j]), "trending-cache") for j in picked.indices]
        if req.explain:
            for n, it in enumerate(items):
                it.explain = {"source": it.source, "mmr_penalty": picked.penalties[n], "contributions": [],
                              "relevance": f"cached trending (degraded: {reason})"}
        total = (time.perf_counter() - t0) * 1000.0
        self.metrics.observe("total", total / 1000.0)
        return Result(items, DEGRADED_VERSION, degraded=True, timings={"total": total})

    def feature_now(self, clock: dict[str, str]) -> datetime:
        """The time features are computed at: the wall clock, or (STREAMREC_SERVING_CLOCK=stream)
        the newest event time the worker has applied — for replays of historical data, so that
        serving sees the same windows the stream and training saw."""
        if self.settings.serving_clock == "stream" and clock.get("max_event_ts"):
            return datetime.fromtimestamp(float(clock["max_event_ts"]), tz=timezone.utc)
        return datetime.now(timezone.utc)

    async def rank(self, user_id: str, item_ids: Sequence[str], request_id: str,
                   explain: bool) -> Result:
        """Score the client's own candidates (no MMR, no filtering), best first."""
        t0 = time.perf_counter()
        if not self.breaker.allow():
            raise StoreUnavailable("online store unavailable (breaker open); retry shortly")
        timings: dict[str, float] = {}
        try:
            clock = (await self._redis(self.read([Read("hgetall", keys.CLOCK)])))[0] \
                if self.settings.serving_clock == "stream" else {}
            now = self.feature_now(clock)
            feats = await self.fetcher.fetch(user_id, list(item_ids), now, self._redis)
        except (StoreUnavailable, OverBudget) as err:
            self.breaker.failure(slow=isinstance(err, OverBudget))
            raise StoreUnavailable(f"online store unavailable or over budget: {err!r}") from err
        self.breaker.success()
        t = self._stage(timings, "features", t0)
        full = columns_matrix(feats.matrix, np.zeros(len(item_ids)),
                              cands.popularity_scores(self.index.current, item_ids))
        loaded = self.models.current
        ranker = loaded.ranker
        try:
            X = matrix_for(ranker, self.models.columns, full)
        except FeatureMismatch:
            self.metrics.fallbacks.labels(reason="feature_mismatch").inc()
            ranker, X = self.models.heuristic.ranker, full
        scores = ranker.score(X)
        order = sorted(range(len(item_ids)), key=lambda j: (-scores[j], j))
        items = [Item(item_ids[j], float(scores[j]), "client") for j in order]
        if explain and order:
            contrib = ranker.contributions(X[order])
            for n, it in enumerate(items):
                it.explain = {"source": "client", "feature_age_s": float(feats.age_s[order[n]]),
                              "contributions": [{"feature": f, "value": v} for f, v in
                                                top_contributions(contrib[n], ranker.feature_names, 5)]}
        self._stage(timings, "score", t)
        timings["total"] = (time.perf_counter() - t0) * 1000.0
        return Result(items, ranker.version, timings=timings)


def _passes(categories: Sequence[str], req: RecRequest) -> bool:
    if req.categories_out and any(c in req.categories_out for c in categories):
        return False
    if req.categories_in is not None and not any(c in req.categories_in for c in categories):
        return False
    return True
