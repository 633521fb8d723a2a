"""Process-wide serving state: clients and components created once at start-up, closed at shutdown.

Background tasks (started by the app's lifespan): registry/ANN polling (hot
reload), the degraded-mode trending cache refresh, and the impression drain.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import datetime, timezone
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from offline.ann import ANNConfig
from serving.batch_read import BatchReader
from serving.cursor import CursorCodec
from serving.degrade import Breaker, TrendingCache
from serving.feature_fetch import FeatureFetcher
from serving.impressions import PRODUCER_OPTIONS, ImpressionLogger
from serving.item_index import NEIGHBOUR_CACHE, IndexHolder, ItemVectors, artifact_signature
from serving.live_read import LuaLiveReader
from serving import mmr_kernel
from serving.metrics import Metrics
from serving.pipeline import Pipeline
from serving.scoring import ModelHolder
from streams import keys
from streams.store import Read
from streams.store_redis import RedisStore
from streamrec.errors import ServiceUnavailable
from streamrec.kafka import start_producer
from streamrec.settings import Settings

log = logging.getLogger("streamrec.serving")


@dataclass
class AppState:
    settings: Settings
    redis: aioredis.Redis
    store: RedisStore
    reader: BatchReader
    metrics: Metrics
    pipeline: Pipeline
    cursors: CursorCodec
    _producer: AIOKafkaProducer | None = None
    _impression_producer: AIOKafkaProducer | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def create(cls, s: Settings) -> "AppState":
        client = aioredis.Redis.from_url(s.redis_url, socket_timeout=2, socket_connect_timeout=1)
        store = RedisStore(client, s.namespace, s.dedupe_ttl_s, follow_live=True)
        reader = BatchReader(client, s.namespace, follow_live=True)
        metrics = Metrics()
        fetcher = FeatureFetcher(reader.read, item_ttl_s=s.serving_item_feature_ttl_s, live=LuaLiveReader(reader))
        models = ModelHolder(s.registry_dir, fetcher.names)
        key = s.serving_cursor_secret.get_secret_value().encode() or secrets.token_bytes(32)
        state = cls(s, client, store, reader, metrics, None, CursorCodec(key, s.serving_cursor_max_served))  # type: ignore[arg-type]
        impressions = ImpressionLogger(state.impression_producer, s.topic_impressions, metrics,
                                       s.serving_impression_buffer)
        breaker = Breaker(s.serving_down_cooldown_s, s.serving_slow_cooldown_s)
        state.pipeline = Pipeline(s, reader.read, fetcher, models, IndexHolder(), breaker, TrendingCache(),
                                  impressions, metrics)
        metrics.set_model(models.current.ranker.version)
        return state

    async def producer(self) -> AIOKafkaProducer:
        """The idempotent producer, started on first use so the API boots while Kafka is down."""
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                self._producer = await start_producer(self.settings, timeout=5.0)
            return self._producer

    async def impression_producer(self) -> AIOKafkaProducer:
        """The impressions' own idempotent producer (``serving.impressions.PRODUCER_OPTIONS``: a
        longer linger), so that ``/events`` keeps the short linger of :meth:`producer`."""
        if self._impression_producer is not None:
            return self._impression_producer
        async with self._lock:
            if self._impression_producer is None:
                self._impression_producer = await start_producer(self.settings, timeout=5.0, **PRODUCER_OPTIONS)
            return self._impression_producer

    # -- hot reload ---------------------------------------------------------------------------
    def ann_dir(self) -> Path | None:
        return self.settings.serving_ann_dir or self.pipeline.models.current.version_dir

    async def reload(self) -> dict[str, object]:
        """Poll the registry pointer and the ANN artifacts once; swap what changed."""
        p = self.pipeline
        swapped_model = await p.models.poll()
        if swapped_model:
            self.metrics.set_model(p.models.current.ranker.version)
        directory = self.ann_dir()
        sig = artifact_signature(directory) if directory is not None else None
        swapped_index = False
        if sig != p.index.source:
            if sig is None:
                p.index.swap(None, None)
            else:
                assert directory is not None
                try:
                    vec = await asyncio.to_thread(ItemVectors.load, directory, directory.name, ANNConfig())
                except (OSError, ValueError, RuntimeError) as err:
                    log.error("ANN artifacts in %s refused: %s", directory, err)
                    vec = p.index.current
                p.index.swap(vec, sig)
            swapped_index = True
            self.metrics.index_items.set(len(p.index.current) if p.index.current else 0)
        return {"model_version": p.models.current.ranker.version, "model_swapped": swapped_model,
                "index_items": len(p.index.current) if p.index.current else 0, "index_swapped": swapped_index}

    async def _every(self, period: float, fn, what: str) -> None:  # type: ignore[no-untyped-def]
        while True:
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a background failure must never stop the loop
                log.warning("%s failed: %s", what, err)
            await asyncio.sleep(period)

    async def start(self) -> None:
        s = self.settings
        await asyncio.to_thread(mmr_kernel.warm)  # the compiled MMR loop, off the event loop
        try:
            await self.reload()
        except Exception as err:
            log.warning("initial model/index load failed: %s", err)
        self._tasks = [
            asyncio.create_task(self._every(s.serving_reload_interval_s, self.reload, "reload")),
            asyncio.create_task(self._every(s.serving_trending_refresh_s, self._refresh_trending, "trending cache")),
            asyncio.create_task(self.pipeline.impressions.run()),
            asyncio.create_task(self._every(0.2, self._refresh_items, "item feature refresh")),
            asyncio.create_task(self._warm_items()),
        ]

    async def _warm_items(self, chunk: int = 100) -> None:
        """Fill the item-feature cache with the ANN catalogue and trending, a chunk at a time,
        then remember every catalogue item's nearest neighbours (in a worker thread)."""
        await asyncio.sleep(0)
        vec = self.pipeline.index.current
        await self._warm_features(vec, chunk)
        n = min(len(vec), NEIGHBOUR_CACHE) if vec is not None else 0
        for start in range(0, n, 256):
            if vec is not self.pipeline.index.current:  # swapped: the new index starts cold
                return
            assert vec is not None
            await asyncio.to_thread(vec.warm_neighbours, range(start, min(start + 256, n)))

    async def _warm_features(self, vec: ItemVectors | None, chunk: int) -> None:
        items = list(vec.ids) if vec is not None else []
        items += [t.item_id for t in self.pipeline.trending.items]
        for start in range(0, len(items), chunk):
            try:
                await self.pipeline.fetcher.warm(items[start:start + chunk], await self._feature_now())
            except Exception as err:  # best effort: requests compute misses themselves
                log.warning("item feature warm-up stopped: %s", err)
                return
            await asyncio.sleep(0.01)

    async def _refresh_items(self) -> None:
        if self.pipeline.breaker.allow():
            await self.pipeline.fetcher.refresh_oldest(await self._feature_now(), batch=50)

    async def _feature_now(self) -> datetime:
        """The clock requests compute features at (``Pipeline.feature_now``): with
        STREAMREC_SERVING_CLOCK=stream the stream's clock, so cached item rows are computed at
        the same time requests use (wall-clock rows were never stale for a replay of old data)."""
        if self.settings.serving_clock != "stream":
            return datetime.now(timezone.utc)
        clock = (await self.reader.read([Read("hgetall", keys.CLOCK)]))[0] or {}
        return self.pipeline.feature_now(clock)

    async def _refresh_trending(self) -> None:
        if self.pipeline.breaker.allow():
            await self.pipeline.trending.refresh(self.reader.read)

    async def close(self) -> None:
        for _ in range(30):  # give queued impressions a moment to go out
            if not len(self.pipeline.impressions) or not self._tasks:
                break
            await asyncio.sleep(0.1)
        for t in self._tasks:
            t.cancel()
        # every step is bounded: a shutdown must finish even if a dependency hangs
        done, stuck = await asyncio.wait(self._tasks, timeout=5.0) if self._tasks else (set(), set())
        if stuck:
            log.warning("background tasks still running at shutdown: %s", [t.get_coro() for t in stuck])
        for producer in (self._impression_producer, self._producer):
            if producer is None:
                continue
            try:
                await asyncio.wait_for(producer.stop(), 10.0)
            except (Exception, asyncio.TimeoutError) as err:  # shutting down: log, never raise
                log.warning("producer stop failed: %s", err)
        try:
            await asyncio.wait_for(self.redis.aclose(), 5.0)
        except (Exception, asyncio.TimeoutError) as err:
            log.warning("Redis client close failed: %s", err)


__all__ = ["AppState", "ServiceUnavailable"]
