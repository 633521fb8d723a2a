"""Kafka clients and topic administration (aiokafka); topic names come from Settings."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from streamrec.errors import ServiceUnavailable
from streamrec.settings import Settings


def all_topics(s: Settings) -> list[str]:
    return [s.topic_events, s.topic_dlq, s.topic_impressions, s.topic_training]


def topic_configs(s: Settings) -> dict[str, str]:
    """The configs streamrec gives the topics it creates (only those set; the broker's defaults otherwise)."""
    out: dict[str, str] = {}
    if s.topic_retention_ms is not None:
        out["retention.ms"] = str(s.topic_retention_ms)
    if s.topic_segment_ms is not None:
        out["segment.ms"] = str(s.topic_segment_ms)
    return out


def compression(s: Settings) -> str | None:
    """aiokafka's / Faust's ``compression_type`` for the setting."""
    return None if s.kafka_compression == "none" else s.kafka_compression


def producer(s: Settings, **overrides: object) -> AIOKafkaProducer:
    """Idempotent producer with acks=all: retries never duplicate, acknowledged means replicated.
    Record batches are compressed with ``STREAMREC_KAFKA_COMPRESSION`` (zstd by default)."""
    kwargs: dict[str, object] = dict(
        bootstrap_servers=s.kafka_bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=15000,
        compression_type=compression(s),
    )
    kwargs.update(overrides)
    return AIOKafkaProducer(**kwargs)


async def ensure_topics(s: Settings, timeout: float = 15.0) -> list[str]:
    """Create any missing topic (``topic_configs``: retention, segment roll); returns the names that were created.
    Topics that exist are left as they are: change their configs with the broker's tools."""
    adm = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(adm.start(), timeout)
    except (KafkaConnectionError, KafkaError, asyncio.TimeoutError, OSError) as err:
        raise ServiceUnavailable(
            f"cannot reach Kafka at {s.kafka_bootstrap}: start it with `streamrec dev up` "
            "or set STREAMREC_KAFKA_BOOTSTRAP"
        ) from err
    try:
        existing = set(await adm.list_topics())
        missing = [t for t in all_topics(s) if t not in existing]
        if missing:
            try:
                await adm.create_topics(
                    [NewTopic(t, num_partitions=s.topic_partitions, replication_factor=1,
                              topic_configs=topic_configs(s)) for t in missing]
                )
            except TopicAlreadyExistsError:
                pass
        return missing
    finally:
        await adm.close()


async def start_producer(s: Settings, timeout: float = 15.0, **overrides: object) -> AIOKafkaProducer:
    p = producer(s, **overrides)
    try:
        await asyncio.wait_for(p.start(), timeout)
    except (KafkaConnectionError, KafkaError, asyncio.TimeoutError, OSError) as err:
        try:
            await p.stop()
        except Exception:
            pass
        raise ServiceUnavailable(
            f"cannot reach Kafka at {s.kafka_bootstrap}: start it with `streamrec dev up` "
            "or set STREAMREC_KAFKA_BOOTSTRAP"
        ) from err
    return p


def partition_key(obj: dict[str, object]) -> bytes | None:
    """Events of one user share a partition (per-user order); item metadata is keyed by item."""
    k = obj.get("user_id") or obj.get("item_id")
    return str(k).encode() if k is not None else None
