"""A worker stopped for longer than the topic's retention: the records deleted meanwhile are counted.

Kafka moves a consumer whose committed position was deleted to the earliest record it still holds,
and says nothing.  The worker checks every consumed batch of both its topics against the topic's
stored offsets watermark and the partition's log start (``streams.retention_watch``): each record
deleted before any worker applied it is logged and counted in ``stats`` (``lost_to_retention`` for
the events topic, ``impressions_lost_to_retention`` for the impressions topic), so that
published = applied + lost holds exactly, for either topic.  A rebuild with ``streamrec replay --from
earliest`` then says how many records it can no longer read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import orjson
import pytest
import redis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams import keys
from streamrec import runtime, services
from streamrec.kafka import ensure_topics, start_producer
from streamrec.replay import replay
from streamrec.settings import Settings
from tests.integration.conftest import run, wait_until

pytestmark = pytest.mark.integration

SHORT_MS, LONG_MS = 3000, 3_600_000


def click(n: int) -> bytes:
    return orjson.dumps({"type": "click", "event_id": f"r{n}", "ts": "2024-03-01T00:00:00Z",
                         "user_id": f"u{n % 7}", "item_id": f"i{n % 11}"})


def impression(n: int) -> bytes:
    return orjson.dumps({"type": "impression", "event_id": f"m{n}", "ts": "2024-03-01T00:00:00Z",
                         "user_id": f"u{n % 7}", "request_id": f"q{n}", "item_ids": [f"i{n % 11}", f"i{(n + 1) % 11}"],
                         "model_version": "m1"})


@dataclass(frozen=True)
class Case:
    """Which of the worker's two topics loses records: its name, records, watermark and stats field."""

    topic: Callable[[Settings], str]
    record: Callable[[int], bytes]
    watermark: str
    stat: str


CASES = {
    "events": Case(lambda s: s.topic_events, click, keys.WATERMARK, "lost_to_retention"),
    "impressions": Case(lambda s: s.topic_impressions, impression, keys.IMPRESSIONS_WATERMARK,
                        "impressions_lost_to_retention"),
}


async def produce(s: Settings, case: Case, first: int, n: int) -> None:
    p = await start_producer(s)
    try:
        for k in range(first, first + n):
            await p.send_and_wait(case.topic(s), case.record(k), partition=0)
    finally:
        await p.stop()


def topic_configs(retention_ms: int) -> dict[str, str]:
    return {"retention.ms": str(retention_ms), "segment.ms": "500"}


async def create_topic(s: Settings, topic: str) -> None:
    adm = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await adm.start()
    try:
        await adm.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                                          topic_configs=topic_configs(LONG_MS))])
    finally:
        await adm.close()


async def set_retention(s: Settings, topic: str, retention_ms: int) -> None:
    """A retention shorter than the settings allow (60 s at least) is set by hand, and only while
    the test wants records deleted: a worker still starting up must not lose any to it."""
    adm = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await adm.start()
    try:
        (resp,) = await adm.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs=topic_configs(retention_ms))])
        assert all(res[0] == 0 for res in resp.resources), resp
    finally:
        await adm.close()


async def offsets(s: Settings, topic: str) -> tuple[int, int]:
    c = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, group_id=None)
    await c.start()
    try:
        tp = TopicPartition(topic, 0)
        return (await c.beginning_offsets([tp]))[tp], (await c.end_offsets([tp]))[tp]
    finally:
        await c.stop()


@pytest.mark.parametrize("which", sorted(CASES))
def test_records_deleted_while_the_worker_was_down_are_counted(infra: dict, tmp_path: Path,  # type: ignore[type-arg]
                                                                monkeypatch: pytest.MonkeyPatch, which: str) -> None:
    case = CASES[which]
    started = datetime.now(timezone.utc) - timedelta(minutes=1)
    kafka: services.Service = infra["kafka"]
    red: services.Service = infra["redis"]
    env = runtime.isolated_env(kafka.port, red.port, tmp_path / "state", "ret", partitions=1)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = Settings()
    r = redis.Redis.from_url(s.redis_url, decode_responses=True)
    stats_key, wm_key = keys.namespaced(s.namespace, keys.STATS), keys.namespaced(s.namespace, case.watermark)
    topic = case.topic(s)

    def applied() -> int:
        return sum(int(v) for f, v in r.hgetall(stats_key).items() if f.startswith("applied:"))

    run(create_topic(s, topic))  # created by hand first: its retention is changed below
    run(ensure_topics(s))  # the other topics; an existing topic keeps its configs
    worker = runtime.worker(env, tmp_path / "worker.log")
    try:
        worker.start()
        run(produce(s, case, 0, 20))
        wait_until(lambda: applied() == 20 and r.hget(wm_key, "0") == "20", 60, "the first 20 applied", worker)
        worker.kill()
        worker.proc.wait()  # type: ignore[union-attr]

        run(set_retention(s, topic, SHORT_MS))

        def lose_while_down(first: int, n: int) -> None:
            run(produce(s, case, first, n))  # while the worker is down ...
            deadline = time.monotonic() + 30
            while run(offsets(s, topic))[0] < first + n:  # ... and deleted by the retention
                assert time.monotonic() < deadline, f"retention deleted nothing: {run(offsets(s, topic))}"
                time.sleep(0.5)

        def lost() -> int:
            return int(r.hget(stats_key, case.stat) or 0)

        # 1. the deleted records are the partition's tail and nothing newer comes: the worker's sweep
        # (every 10 s, two in a row with the worker idle) counts them
        lose_while_down(20, 30)
        worker.start()
        wait_until(lambda: lost() == 30, 60, "the deleted tail counted", worker)
        assert applied() == 20

        # 2. deleted while the worker is down, and fresh records after: the first one consumed shows
        # the gap (those the restarting worker is too slow for are deleted too: counted as well)
        worker.kill()
        worker.proc.wait()  # type: ignore[union-attr]
        lose_while_down(50, 30)
        worker.start()
        n = 80
        while applied() == 20:
            assert worker.alive(), worker.log_tail(20)
            assert n < 80 + 200, "the restarted worker applied nothing"
            run(produce(s, case, n, 1))
            n += 1
            time.sleep(0.3)
        run(set_retention(s, topic, LONG_MS))  # from here on nothing is deleted: the rebuild below sees a fixed log start
        run(produce(s, case, n, 10))
        n += 10
        wait_until(lambda: r.hget(wm_key, "0") == str(n), 60, "the worker caught up", worker)
        assert lost() >= 60
        assert applied() + lost() == n  # every record published is applied or counted as deleted
        assert r.hget(stats_key, "duplicates") in (None, "0")
        log = (tmp_path / "worker.log").read_text()
        assert "were deleted by the topic's retention before they were applied" in log
        # a rebuild from the topics now says how many records it can no longer see
        res = run(replay(s, "retrebuilt", None, progress=False))
        begin, end = run(offsets(s, topic))
        assert end == n
        assert res.not_retained == begin >= 80
        assert res.records == end - begin
        assert res.maybe_not_retained == ()
        # from a time before the first record: the deleted records may have been after it, and it says so
        res = run(replay(s, "retfromtime", started, progress=False))
        assert res.maybe_not_retained == ((topic, 0, begin),)
        assert res.records == end - begin and res.not_retained == 0
    finally:
        worker.kill()
        r.close()
