"""The Faust worker: events topic -> validate + dedupe -> online state in Redis.

Batches come from ``take_events``, which acknowledges offsets only after the
batch has been handed back, i.e. after ``BatchProcessor.process`` has applied
it to Redis in one atomic Lua call.  At-least-once delivery plus idempotent
application gives effectively-once state.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import faust
import redis.asyncio as aioredis

from streams.batch import Record
from streams.online_state import StateConfig
from streams.processor import BatchProcessor
from streams.store_redis import RedisStore
from streamrec.settings import Settings

log = logging.getLogger("streamrec.worker")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def build_app(s: Settings) -> faust.App:
    (s.state_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        s.worker_id,
        broker=f"kafka://{s.kafka_bootstrap.replace(',', ';kafka://')}",
        store="memory://",
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        topic_partitions=s.topic_partitions,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        producer_acks=-1,
        # a SIGKILLed member is evicted after this, and its partitions move on
        broker_session_timeout=s.worker_session_timeout_s,
        broker_heartbeat_interval=max(1.0, s.worker_session_timeout_s / 5),
        broker_rebalance_timeout=s.worker_session_timeout_s,
        # static membership (KIP-345): a restarted worker takes its old place at once
        # instead of waiting for the dead member to be evicted
        consumer_group_instance_id=s.worker_instance,
        datadir=str(s.state_dir / "faust"),
    )
    events = app.topic(s.topic_events, value_serializer="raw", key_serializer="raw", partitions=s.topic_partitions)
    dlq = app.topic(s.topic_dlq, value_serializer="raw", key_serializer="raw", partitions=s.topic_partitions)
    state: dict[str, BatchProcessor] = {}

    async def send_dead_letter(value: bytes, key: bytes | None) -> None:
        fut = await dlq.send(key=key, value=value)
        await fut  # delivered before the batch's offsets can be acknowledged

    async def processor() -> BatchProcessor:
        if "p" not in state:
            client = aioredis.Redis.from_url(s.redis_url, socket_timeout=10, socket_connect_timeout=5)
            store = RedisStore(client, s.namespace, s.dedupe_ttl_s, follow_live=True)
            state["p"] = BatchProcessor(
                store, send_dead_letter, utcnow, s.topic_events,
                StateConfig(trending_half_life_s=s.trending_half_life_s),
            )
        return state["p"]

    @app.agent(events, name="ingest")
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        proc = await processor()
        async for batch in stream.take_events(s.worker_batch, within=s.worker_batch_ms / 1000):
            records = [Record(e.message.partition, e.message.offset, e.value or b"") for e in batch]
            await proc.process(records)

    @app.timer(interval=10.0)
    async def report() -> None:
        if "p" in state:
            c = state["p"].counters
            log.info(
                "processed records=%d applied=%d duplicates=%d dead_letters=%d batches=%d",
                c.records, c.applied, c.duplicates, c.dead_letters, c.batches,
            )

    return app


def run_worker(s: Settings, loglevel: str = "warn") -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT."""
    import sys

    app = build_app(s)
    sys.argv = ["streamrec-worker", "worker", "-l", loglevel, "--without-web"]
    app.main()
