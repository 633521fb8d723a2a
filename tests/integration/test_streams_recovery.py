"""On real services: SIGKILL x3 with every feature, labels and embeddings on;
replay into a fresh namespace gives the live digest; --swap while /recommend keeps answering."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timezone

import pytest
import redis

from schemas.codec import encode
from schemas.events import Event, Impression, ItemMeta
from streams import keys
from streams.batch import Record
from streams.embeddings import encode_f32
from streams.processor import BatchProcessor
from streams.store_memory import MemoryStore
from streams.store_redis import RedisStore
from streams.worker import plan_config
from streamrec.kafka import ensure_topics, start_producer
from streamrec.publisher import event_key
from streamrec.replay import replay, swap
from streamrec.runtime import Child
from streamrec.settings import Settings
from tests.integration.conftest import run, wait_until
from tests.unit.streams.streamgen import make_stream

pytestmark = pytest.mark.integration
N = 20_000
LABEL_ENV = {"STREAMREC_LABEL_WINDOW_S": "120", "STREAMREC_LABEL_LATENESS_S": "30",
             "STREAMREC_LABEL_BUFFER_S": "86400", "STREAMREC_LABEL_BUFFER_MAX_S": "10000000"}
# event time runs ~25,000x faster than wall time here (2,500 events/s, ~10 s apart), so after a
# restart the impressions topic can lag the events topic by days of event time: the cap is set
# beyond the whole stream, so labels must come out as in an uninterrupted run however far it lags


async def produce(s: Settings, events: list[Event], rate: float, out: list[Record]) -> None:
    """Events and impressions to their topics in order; records the coordinates they got."""
    await ensure_topics(s)
    p = await start_producer(s)
    t0 = time.monotonic()
    try:
        for start in range(0, len(events), 500):
            chunk = events[start:start + 500]
            futs = []
            for e in chunk:
                topic = s.topic_impressions if isinstance(e, Impression) else s.topic_events
                futs.append(await p.send(topic, key=event_key(e), value=encode(e)))
            for e, md in zip(chunk, await asyncio.gather(*futs)):
                topic = "" if md.topic == s.topic_events else md.topic
                out.append(Record(md.partition, md.offset, encode(e), topic))
            ahead = (start + len(chunk)) / rate - (time.monotonic() - t0)
            if ahead > 0:
                await asyncio.sleep(ahead)
    finally:
        await p.stop()


def applied_total(r: redis.Redis, ns: str) -> int:
    st = r.hgetall(keys.namespaced(ns, keys.STATS))
    return sum(int(v) for k, v in st.items() if k.startswith("applied:"))


def reference_store(records: list[Record], s: Settings, vectors: dict) -> MemoryStore:  # type: ignore[type-arg]
    store = MemoryStore()
    store.hashes[keys.VEC_META] = {"version": "itest", "dim": "4"}
    for item, v in vectors.items():
        store.strings[keys.trained_item_vector("itest", item)] = encode_f32(v)

    async def nothing(v: bytes, k: bytes | None) -> None:
        return None

    proc = BatchProcessor(store, nothing, lambda: datetime.now(timezone.utc), s.topic_events, plan_config(s))

    async def go() -> None:
        for start in range(0, len(records), 500):
            await proc.process(records[start:start + 500])

    asyncio.run(go())
    return store


def differing_keys(s: Settings, ns: str, ref: MemoryStore) -> list[str]:
    import redis.asyncio as aioredis

    from streams.digest import digest_items, included

    async def dump() -> list:  # type: ignore[type-arg]
        c = aioredis.Redis.from_url(s.redis_url)
        try:
            return await RedisStore(c, ns).dump(ns)
        finally:
            await c.aclose()

    live = {k: (t, v) for k, t, v in run(dump())}
    mem = {k: ("hash", v) for k, v in ref.hashes.items() if v}
    mem.update({k: ("zset", v) for k, v in ref.zsets.items() if v})
    mem.update({k: ("string", v) for k, v in ref.strings.items()})
    out = []
    for k in sorted(set(live) | set(mem)):
        if included(k):
            a = digest_items([(k, *live[k])] if k in live else [])
            b = digest_items([(k, *mem[k])] if k in mem else [])
            if a != b:
                out.append(f"{k}: live={str(live.get(k))[:200]} ref={str(mem.get(k))[:200]}")
    return out


async def redis_digest(s: Settings, ns: str) -> str:
    import redis.asyncio as aioredis

    c = aioredis.Redis.from_url(s.redis_url)
    try:
        return await RedisStore(c, ns).digest()
    finally:
        await c.aclose()


def publish_stream_vectors(rclient: redis.Redis, stream) -> None:  # type: ignore[no-untyped-def]
    """The stream's trained item vectors, as the trainer publishes them (model version "itest")."""
    rclient.hset(keys.VEC_META, mapping={"version": "itest", "dim": "4"})
    pipe = rclient.pipeline()
    for item, v in stream.vectors.items():
        pipe.set(keys.trained_item_vector("itest", item), encode_f32(v))
    pipe.execute()


def remove_stream_vectors(rclient: redis.Redis) -> None:
    rclient.delete(keys.VEC_META, keys.LIVE_POINTER)
    for k in rclient.scan_iter(match="streamrec:vec:itest:*", count=1000):
        rclient.delete(k)


def assert_converges_to_reference(rclient: redis.Redis, s: Settings, worker: Child, records: list[Record],
                                  stream, timeout: float) -> str:  # type: ignore[no-untyped-def]
    """Every event applied exactly once and the live digest equal to an uninterrupted run's; returns it."""
    ns = s.namespace
    wait_until(lambda: applied_total(rclient, ns) >= len(stream.events), timeout, "all events applied", worker)
    time.sleep(1.0)
    assert applied_total(rclient, ns) == len(stream.events)
    live = run(redis_digest(s, ns))
    ref = reference_store(records, s, stream.vectors)
    assert live == run(ref.digest()), differing_keys(s, ns, ref)[:10]
    # the stream really exercised labels
    assert int(rclient.hget(keys.namespaced(ns, "labels:counts"), "grade:0") or 0) > 0
    return live


@pytest.fixture()
def vectors_published(rclient: redis.Redis):  # type: ignore[no-untyped-def]
    stream = make_stream(11, n=N, partitions=4, users=300, items=400)
    publish_stream_vectors(rclient, stream)
    yield stream
    remove_stream_vectors(rclient)


def test_sigkill_three_times_then_replay_and_swap(
    env: dict[str, str], settings: Settings, worker: Child, rclient: redis.Redis, vectors_published, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    for k, v in LABEL_ENV.items():
        monkeypatch.setenv(k, v)
    env.update(LABEL_ENV)
    s = Settings()
    stream = vectors_published
    metas = [e for e in stream.events if isinstance(e, ItemMeta)]
    body = stream.events[len(metas):]
    records: list[Record] = []
    ns = s.namespace
    # item metadata first (categories are as known when an interaction is processed)
    run(produce(s, metas, 10_000, records))
    worker.start()
    wait_until(lambda: applied_total(rclient, ns) >= len(metas), 120, "metadata applied", worker)
    pub = threading.Thread(target=lambda: run(produce(s, body, 2500, records)), daemon=True)
    pub.start()
    for mark in (4000, 9000, 14000):
        wait_until(lambda: applied_total(rclient, ns) >= mark, 180, f"{mark} applied", worker)
        worker.kill()
        assert applied_total(rclient, ns) < len(stream.events), "each kill must land mid-stream"
        worker.start()
    pub.join(120)
    live = assert_converges_to_reference(rclient, s, worker, records, stream, 300)
    # ... and embeddings
    assert rclient.exists(keys.namespaced(ns, keys.user_vector("itest", "u1")))
    assert any(rclient.scan_iter(match=keys.namespaced(ns, "vec:itest:item:*"), count=10_000))

    # replay the retained topics into a fresh namespace: same digest
    fresh = ns + "r"
    res = run(replay(s, fresh, None, progress=False))
    assert res.records == len(stream.events)
    assert run(redis_digest(s, fresh)) == live

    # swap while /recommend keeps answering
    from fastapi.testclient import TestClient

    from serving.main import create_app

    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    def hammer() -> None:
        with TestClient(create_app(s)) as api:
            while not stop.is_set():
                r = api.post("/recommend", json={"user_id": "u1", "k": 5})
                if r.status_code != 200 or not r.json().get("items"):
                    failures.append(f"{r.status_code} {r.text[:200]}")
                answered[0] += 1

    t = threading.Thread(target=hammer, daemon=True)
    t.start()
    time.sleep(1.0)
    prev, _ = run(swap(s, fresh, progress=False))
    time.sleep(1.0)
    stop.set()
    t.join(30)
    assert rclient.get(keys.LIVE_POINTER) == fresh and prev is None
    assert answered[0] > 5 and not failures, failures[:3]
    worker.stop()
