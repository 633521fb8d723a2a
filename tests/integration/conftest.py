"""Real services for integration tests: a noida-db broker and a Redis server on free loopback ports.

Both start once per test session and stop at the end.  Each test gets its own
topic names, Redis namespace and consumer group, so tests never see each
other's data.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis
import redis.asyncio as aioredis

from streamrec import runtime, services
from streamrec.settings import Settings
from streams.store import Store
from streams.store_memory import MemoryStore
from streams.store_redis import RedisStore

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("infra")
    kafka = services.start_kafka(services.free_port(), root / "kafka")
    red = services.start_redis(services.free_port(), root / "redis", aof=True, fsync="everysec")
    try:
        yield {"kafka": kafka, "redis": red, "root": root}
    finally:
        kafka.stop()
        red.stop()


@pytest.fixture()
def env(infra: dict[str, object], tmp_path: Path) -> dict[str, str]:
    kafka: services.Service = infra["kafka"]  # type: ignore[assignment]
    red: services.Service = infra["redis"]  # type: ignore[assignment]
    return runtime.isolated_env(kafka.port, red.port, tmp_path / "state", "t", partitions=4)


@pytest.fixture()
def settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return Settings()


@pytest.fixture()
def rclient(settings: Settings) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    yield c
    c.close()


@pytest.fixture()
def worker(env: dict[str, str], tmp_path: Path) -> Iterator[runtime.Child]:
    child = runtime.worker(env, tmp_path / "worker.log")
    yield child
    child.kill()


def wait_until(
    cond: Callable[[], bool], timeout: float, what: str, child: runtime.Child | None = None
) -> None:
    """Poll ``cond``; fail at once if ``child`` (a worker) has died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if child is not None and child.proc is not None and not child.alive():
            raise AssertionError(f"{child.name} died while waiting for {what}:\n{child.log_tail(30)}")
        time.sleep(0.1)
    tail = child.log_tail(30) if child is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}.\n{tail}")


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def topic_records(s: Settings) -> list:  # type: ignore[type-arg]
    """Every retained record of the events and impressions topics, merged by record timestamp."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.batch import Record

    c = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest")
    await c.start()
    try:
        tps = [TopicPartition(t, p) for t in (s.topic_events, s.topic_impressions)
               for p in (c.partitions_for_topic(t) or await _parts(c, t))]
        c.assign(tps)
        ends = await c.end_offsets(tps)
        await c.seek_to_beginning(*tps)
        got: list[tuple[int, int, int, Record]] = []
        todo = {tp for tp in tps if ends[tp] > 0}
        while todo:
            for tp, msgs in (await c.getmany(*todo, timeout_ms=1000)).items():
                for m in msgs:
                    if m.offset < ends[tp]:
                        topic = "" if tp.topic == s.topic_events else tp.topic
                        got.append((m.timestamp, 0 if topic == "" else 1, m.offset, Record(tp.partition, m.offset, m.value, topic)))
                    if m.offset + 1 >= ends[tp]:
                        todo.discard(tp)
        got.sort(key=lambda t: (t[0], t[1], t[3].partition, t[2]))
        return [r for *_, r in got]
    finally:
        await c.stop()


async def _parts(c, topic: str) -> set[int]:  # type: ignore[no-untyped-def]
    await c._client.force_metadata_update()
    return c.partitions_for_topic(topic) or set()


def reference_digest(s: Settings, chunk: int = 500) -> str:
    """The digest of an uninterrupted run: every retained record, processed once by the worker's own
    code path into an in-memory store."""
    from datetime import datetime, timezone

    from streams.processor import BatchProcessor
    from streams.worker import plan_config

    records = run(topic_records(s))
    store = MemoryStore()

    async def nothing(v: bytes, k: bytes | None) -> None:
        return None

    proc = BatchProcessor(store, nothing, lambda: datetime.now(timezone.utc), s.topic_events, plan_config(s))

    async def go() -> str:
        for start in range(0, len(records), chunk):
            await proc.process(records[start:start + chunk])
        return await store.digest()

    return run(go())


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[Callable[[], Store]]:
    if request.param == "memory":
        yield lambda: MemoryStore(f"m{uuid.uuid4().hex[:6]}")
        return
    infra = request.getfixturevalue("infra")
    url = f"redis://127.0.0.1:{infra['redis'].port}/0"
    yield lambda: RedisStore(aioredis.Redis.from_url(url), f"c{uuid.uuid4().hex[:6]}")
