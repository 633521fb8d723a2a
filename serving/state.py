"""Process-wide serving state: clients created once at start-up, closed at shutdown."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from streams.store_redis import RedisStore
from streamrec.errors import ServiceUnavailable
from streamrec.kafka import start_producer
from streamrec.settings import Settings

log = logging.getLogger("streamrec.api")


@dataclass
class AppState:
    settings: Settings
    redis: aioredis.Redis
    store: RedisStore
    _producer: AIOKafkaProducer | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def create(cls, s: Settings) -> "AppState":
        client = aioredis.Redis.from_url(s.redis_url, socket_timeout=2, socket_connect_timeout=2)
        return cls(s, client, RedisStore(client, s.namespace, s.dedupe_ttl_s, follow_live=True))

    async def producer(self) -> AIOKafkaProducer:
        """The idempotent producer, started on first use so the API boots while Kafka is down."""
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                self._producer = await start_producer(self.settings, timeout=5.0)
            return self._producer

    async def close(self) -> None:
        if self._producer is not None:
            try:
                await self._producer.stop()
            except Exception as err:  # shutting down: log, never raise
                log.warning("producer stop failed: %s", err)
        await self.redis.aclose()


__all__ = ["AppState", "ServiceUnavailable"]
