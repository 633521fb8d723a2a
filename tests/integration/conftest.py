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

from streamrec import runtime, services
from streamrec.settings import Settings

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
    tag = uuid.uuid4().hex[:8]
    kafka: services.Service = infra["kafka"]  # type: ignore[assignment]
    red: services.Service = infra["redis"]  # type: ignore[assignment]
    return {
        "STREAMREC_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka.port}",
        "STREAMREC_REDIS_URL": f"redis://127.0.0.1:{red.port}/0",
        "STREAMREC_NAMESPACE": f"t{tag}",
        "STREAMREC_TOPIC_EVENTS": f"events.{tag}",
        "STREAMREC_TOPIC_DLQ": f"dlq.{tag}",
        "STREAMREC_TOPIC_IMPRESSIONS": f"impressions.{tag}",
        "STREAMREC_TOPIC_TRAINING": f"training.{tag}",
        "STREAMREC_WORKER_ID": f"worker-{tag}",
        "STREAMREC_STATE_DIR": str(tmp_path / "state"),
        "STREAMREC_TOPIC_PARTITIONS": "4",
    }


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
