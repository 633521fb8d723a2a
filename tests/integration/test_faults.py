"""Fault injection on real services: Redis and the broker restarted in the middle of a stream.

Each test starts its own broker and Redis (it restarts them), a worker child, and
checks that the final state equals a clean in-memory application of the events.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
import redis

from streams import keys
from streams.store_redis import RedisStore
from streamrec import runtime, services
from streamrec.publisher import publish_events
from streamrec.settings import Settings
from tests.integration.conftest import reference_digest, run, wait_until
from tests.integration.events_gen import interactions

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture()
def own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    kafka = services.start_kafka(services.free_port(), tmp_path / "kafka")
    red = services.start_redis(services.free_port(), tmp_path / "redis", aof=True, fsync="always")
    env = runtime.isolated_env(kafka.port, red.port, tmp_path / "state", "f")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    worker = runtime.worker(env, tmp_path / "worker.log")
    box: dict[str, object] = {"kafka": kafka, "redis": red, "env": env, "worker": worker, "settings": Settings()}
    try:
        yield box
    finally:
        worker.kill()
        for svc in (box["kafka"], box["redis"]):
            svc.stop()  # type: ignore[attr-defined]


def applied(r: redis.Redis, ns: str) -> int:
    try:
        st = r.hgetall(keys.namespaced(ns, keys.STATS))
    except redis.RedisError:
        return -1
    return sum(int(v) for k, v in st.items() if k.startswith("applied:"))


def live_digest(s: Settings) -> str:
    import redis.asyncio as aioredis

    async def go() -> str:
        c = aioredis.Redis.from_url(s.redis_url)
        try:
            return await RedisStore(c, s.namespace).digest()
        finally:
            await c.aclose()

    return asyncio.run(go())


def check_exact(r: redis.Redis, s: Settings, events: list) -> None:  # type: ignore[type-arg]
    expected: dict[str, Counter[str]] = {}
    for e in events:
        expected.setdefault(e.item_id, Counter())[e.type] += 1
    for item, c in expected.items():
        got = {k: int(v) for k, v in r.hgetall(keys.namespaced(s.namespace, keys.item_counts(item))).items()}
        assert got == dict(c), item
    assert live_digest(s) == reference_digest(s)


def test_redis_killed_and_restarted_mid_stream_loses_no_update(own: dict[str, object]) -> None:
    s: Settings = own["settings"]  # type: ignore[assignment]
    worker: runtime.Child = own["worker"]  # type: ignore[assignment]
    red: services.Service = own["redis"]  # type: ignore[assignment]
    events = interactions(8000, seed=11, prefix="rk")
    r = redis.Redis.from_url(s.redis_url, decode_responses=True)
    worker.start()
    pub = threading.Thread(target=lambda: run(publish_events(s, events, rate=3000, progress=False)), daemon=True)
    pub.start()
    wait_until(lambda: applied(r, s.namespace) >= 2000, 120, "2,000 applied", worker)
    red.kill()  # SIGKILL: only what AOF (appendfsync always) made durable survives
    own["redis"] = red = services.start_redis(red.port, red.data_dir, aof=True, fsync="always")
    pub.join(120)
    wait_until(lambda: applied(r, s.namespace) >= len(events), 240, "every event applied", worker)
    assert applied(r, s.namespace) == len(events)
    check_exact(r, s, events)


def test_broker_restarted_mid_stream_loses_and_duplicates_nothing(own: dict[str, object]) -> None:
    s: Settings = own["settings"]  # type: ignore[assignment]
    worker: runtime.Child = own["worker"]  # type: ignore[assignment]
    kafka: services.Service = own["kafka"]  # type: ignore[assignment]
    events = interactions(8000, seed=12, prefix="bk")
    half = len(events) // 2
    r = redis.Redis.from_url(s.redis_url, decode_responses=True)
    worker.start()
    run(publish_events(s, events[:half], progress=False))
    wait_until(lambda: applied(r, s.namespace) >= half // 2, 120, "half of the first part applied", worker)
    kafka.stop()
    own["kafka"] = kafka = services.start_kafka(kafka.port, kafka.data_dir)
    run(publish_events(s, events[half:], progress=False))
    wait_until(lambda: applied(r, s.namespace) >= len(events), 240, "every event applied", worker)
    assert applied(r, s.namespace) == len(events)
    check_exact(r, s, events)
