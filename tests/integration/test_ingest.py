"""Foundation acceptance: HTTP ingest, dead letters, dedupe, and SIGKILL recovery on real services."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import orjson
import pytest
import redis
from aiokafka import AIOKafkaConsumer
from fastapi.testclient import TestClient

from serving.main import create_app
from streams import keys
from streams.store_redis import RedisStore
from streamrec.kafka import ensure_topics, start_producer
from streamrec.publisher import publish_events
from streamrec.runtime import Child
from streamrec.settings import Settings
from tests.integration.conftest import reference_digest, run, wait_until
from tests.integration.events_gen import interactions

pytestmark = pytest.mark.integration


def counts(r: redis.Redis, ns: str, item: str) -> dict[str, str]:
    return r.hgetall(keys.namespaced(ns, keys.item_counts(item)))


def stats(r: redis.Redis, ns: str) -> dict[str, int]:
    return {k: int(v) for k, v in r.hgetall(keys.namespaced(ns, keys.STATS)).items()}


def applied_total(r: redis.Redis, ns: str) -> int:
    return sum(v for k, v in stats(r, ns).items() if k.startswith("applied:"))


def click(eid: str, item: str = "i1", user: str = "u1") -> dict[str, object]:
    return {"type": "click", "event_id": eid, "ts": "2024-03-01T00:00:00Z", "user_id": user, "item_id": item}


async def produce_raw(s: Settings, values: list[bytes]) -> None:
    await ensure_topics(s)
    p = await start_producer(s)
    try:
        for v in values:
            await p.send_and_wait(s.topic_events, v, key=b"k")
    finally:
        await p.stop()


async def read_topic(s: Settings, topic: str, n: int, timeout: float = 20.0) -> list[bytes]:
    c = AIOKafkaConsumer(topic, bootstrap_servers=s.kafka_bootstrap, auto_offset_reset="earliest", group_id=None)
    await c.start()
    out: list[bytes] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(out) < n and loop.time() < deadline:
            for msgs in (await c.getmany(timeout_ms=500)).values():
                out += [m.value for m in msgs]
    finally:
        await c.stop()
    return out


def test_event_posted_over_http_reaches_redis_counts(settings: Settings, worker: Child, rclient: redis.Redis) -> None:
    worker.start()
    with TestClient(create_app(settings)) as api:
        resp = api.post("/events", json=[click("h1", "i-http"), {"type": "rate", "rating": 9}])
        body = resp.json()
        assert resp.status_code == 202, body
        assert body["accepted"] == 1 and body["rejected"] == 1
        assert "rating" in body["errors"][0]["reason"]
        assert body["watermark"]
        # an event 1,024 levels deep parses alone but not inside the body's array: it is refused alone
        deep = b'{"a":' * 1024 + b"1" + b"}" * 1024
        resp = api.post("/events", content=b"[" + orjson.dumps(click("h2", "i-http")) + b"," + deep + b"]",
                        headers={"content-type": "application/json"})
        body = resp.json()
        assert resp.status_code == 202 and (body["accepted"], body["rejected"]) == (1, 1), body
        assert body["errors"][0]["index"] == 1 and "deep" in body["errors"][0]["reason"]
        rec = api.post("/recommend", json={"user_id": "someone-else", "k": 5})
    ns = settings.namespace
    wait_until(lambda: counts(rclient, ns, "i-http").get("click") == "2", 90, "the clicks in Redis", worker)
    with TestClient(create_app(settings)) as api:
        rec = api.post("/recommend", json={"user_id": "someone-else", "k": 5}).json()
        assert [i["item_id"] for i in rec["items"]] == ["i-http"]
        mine = api.post("/recommend", json={"user_id": "u1", "k": 5}).json()
        assert mine["items"] == []  # u1 already interacted with the only item


def test_malformed_record_goes_to_dead_letter_and_worker_continues(
    settings: Settings, worker: Child, rclient: redis.Redis
) -> None:
    bad = [b"this is not json", orjson.dumps({"type": "rate", "event_id": "b2", "rating": 9}), b"[" * 5000]
    good = orjson.dumps(click("g1", "i-good"))
    run(produce_raw(settings, bad + [good]))
    worker.start()
    ns = settings.namespace
    wait_until(lambda: counts(rclient, ns, "i-good").get("click") == "1", 90, "the good event", worker)
    letters = [orjson.loads(v) for v in run(read_topic(settings, settings.topic_dlq, len(bad)))]
    assert len(letters) == len(bad)
    import base64

    originals = sorted(base64.b64decode(d["original_b64"]) for d in letters)
    assert originals == sorted(bad)
    assert all(d["reason"] for d in letters)
    by_orig = {base64.b64decode(d["original_b64"]): d["reason"] for d in letters}
    assert "not valid JSON" in by_orig[b"this is not json"]
    assert "rating" in by_orig[bad[1]]
    assert stats(rclient, ns)["dead_letters"] == len(bad)
    # later good records are still processed
    run(produce_raw(settings, [orjson.dumps(click("g2", "i-good2"))]))
    wait_until(lambda: counts(rclient, ns, "i-good2").get("click") == "1", 30, "a later good event", worker)
    assert worker.alive()


def test_same_event_twice_counts_once(settings: Settings, worker: Child, rclient: redis.Redis) -> None:
    worker.start()
    ev = click("dup-1", "i-dup")
    with TestClient(create_app(settings)) as api:
        assert api.post("/events", json=ev).json()["accepted"] == 1
        assert api.post("/events", json=[ev, ev]).json()["accepted"] == 2
    run(produce_raw(settings, [orjson.dumps(ev), orjson.dumps(click("dup-2", "i-after"))]))
    ns = settings.namespace
    wait_until(lambda: counts(rclient, ns, "i-after").get("click") == "1", 90, "the sentinel event", worker)
    wait_until(lambda: stats(rclient, ns).get("duplicates", 0) == 3, 10, "three duplicates", worker)
    assert counts(rclient, ns, "i-dup") == {"click": "1"}


def test_sigkill_mid_stream_loses_nothing_and_double_counts_nothing(
    settings: Settings, worker: Child, rclient: redis.Redis
) -> None:
    events = interactions(10_000, seed=7)
    ns = settings.namespace
    publisher = threading.Thread(
        target=lambda: run(publish_events(settings, events, rate=4000, progress=False)), daemon=True
    )
    worker.start()
    publisher.start()
    wait_until(lambda: applied_total(rclient, ns) >= 2500, 120, "2,500 applied events", worker)
    worker.kill()
    killed_at = applied_total(rclient, ns)
    assert killed_at < len(events), "the kill must land in the middle of the stream"
    worker.start()
    publisher.join(120)
    wait_until(lambda: applied_total(rclient, ns) >= len(events), 240, "all events applied", worker)
    assert applied_total(rclient, ns) == len(events)
    expected: dict[str, Counter[str]] = {}
    for e in events:
        expected.setdefault(e.item_id, Counter())[e.type] += 1
    for item, c in expected.items():
        assert {k: int(v) for k, v in counts(rclient, ns, item).items()} == dict(c), item
    # the whole state equals a clean in-memory application of the same events
    live = run(_redis_digest(settings))
    assert live == reference_digest(settings)


async def _redis_digest(s: Settings) -> str:
    import redis.asyncio as aioredis

    c = aioredis.Redis.from_url(s.redis_url)
    try:
        return await RedisStore(c, s.namespace).digest()
    finally:
        await c.aclose()


