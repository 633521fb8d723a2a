"""``streamrec demo``: the whole loop on the embedded runtime, on MovieLens-100K.

Starts a broker and Redis on free loopback ports (data under
``.streamrec/demo``, wiped first), starts the worker, replays MovieLens as
events (plus a few hostile records and retried duplicates), waits until the
worker has applied everything, trains, serves, queries and prints what happened.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import orjson
import redis
from tqdm import tqdm

from offline.movielens import DatasetMissing, MovieLens, load
from streams import keys
from streamrec import runtime, services
from streamrec.errors import UserError
from streamrec.kafka import start_producer
from streamrec.movielens_events import metadata_events, rating_events
from streamrec.publisher import publish_events
from streamrec.settings import Settings

HOSTILE = [
    b"this is not JSON",
    orjson.dumps({"type": "rate", "event_id": "bad-1", "ts": "2024-01-01T00:00:00Z", "user_id": "1", "item_id": "1", "rating": 9}),
    orjson.dumps({"type": "teleport", "event_id": "bad-2"}),
    orjson.dumps({"type": "view", "event_id": "bad-3", "ts": "2100-01-01T00:00:00Z", "user_id": "1", "item_id": "1", "dwell_ms": -5}),
]
RETRIED = 500  # ratings published a second time, as a client retry would


async def _produce_raw(s: Settings, values: list[bytes]) -> None:
    p = await start_producer(s)
    try:
        for v in values:
            await p.send_and_wait(s.topic_events, v, key=b"demo")
    finally:
        await p.stop()


def _applied(r: redis.Redis, ns: str) -> tuple[int, dict[str, int]]:
    st = {k: int(v) for k, v in r.hgetall(keys.namespaced(ns, keys.STATS)).items()}
    seen = sum(v for k, v in st.items() if k.startswith("applied:")) + st.get("duplicates", 0) + st.get("dead_letters", 0)
    return seen, st


def _wait_applied(r: redis.Redis, ns: str, total: int, worker: runtime.Child, timeout: float = 420) -> dict[str, int]:
    bar = tqdm(total=total, desc="worker applying", unit="ev", mininterval=0.5)
    deadline = time.monotonic() + timeout
    done = 0
    while True:
        seen, st = _applied(r, ns)
        bar.update(seen - done)
        done = seen
        if seen >= total:
            bar.close()
            return st
        if not worker.alive():
            bar.close()
            raise UserError(f"the worker exited: {worker.log_tail(5)}")
        if time.monotonic() > deadline:
            bar.close()
            raise UserError(f"the worker processed {seen} of {total} records in {timeout:.0f}s (log {worker.log_path})")
        time.sleep(0.5)


def _titles(ml: MovieLens) -> dict[str, str]:
    return {m.item_id: f"{m.title} ({m.year})" if m.year else m.title for m in ml.movies}


def run_demo(base: Settings, limit: int | None = None) -> int:
    try:
        ml = load(limit=limit)
    except DatasetMissing as err:
        raise UserError(str(err)) from err
    root = (base.state_dir / "demo").resolve()
    shutil.rmtree(root, ignore_errors=True)
    t_start = time.monotonic()
    print(f"[1/6] starting the broker and Redis under {root}")
    kafka = services.start_kafka(services.free_port(), root / "kafka")
    red = services.start_redis(services.free_port(), root / "redis", aof=True, fsync="everysec")
    children: list[runtime.Child] = []
    try:
        env = {
            "STREAMREC_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka.port}",
            "STREAMREC_REDIS_URL": f"redis://127.0.0.1:{red.port}/0",
            "STREAMREC_STATE_DIR": str(root / "state"),
            "STREAMREC_NAMESPACE": base.namespace,
            "STREAMREC_API_KEYS": "",
            # MovieLens is from 1997-98: compute features at the stream's event time, as training did
            "STREAMREC_SERVING_CLOCK": "stream",
        }
        s = base.model_copy(update={"kafka_bootstrap": env["STREAMREC_KAFKA_BOOTSTRAP"], "redis_url": env["STREAMREC_REDIS_URL"],
                                    "state_dir": root / "state", "api_keys": []})
        print(f"      kafka 127.0.0.1:{kafka.port}  redis 127.0.0.1:{red.port}")
        print("[2/6] starting the stream worker")
        worker = runtime.worker(env, root / "worker.log").start()
        children.append(worker)

        print("[3/6] replaying MovieLens-100K as events (metadata first, then ratings in time order)")
        meta = list(metadata_events(ml))
        ratings = list(rating_events(ml))
        r1 = asyncio.run(publish_events(s, meta, len(meta), desc="metadata"))
        r2 = asyncio.run(publish_events(s, ratings, len(ratings), desc="ratings"))
        asyncio.run(_produce_raw(s, HOSTILE))
        retried = ratings[:RETRIED]
        r3 = asyncio.run(publish_events(s, retried, len(retried), desc="retried", progress=False))
        published = r1.published + r2.published + len(HOSTILE) + r3.published
        r = redis.Redis.from_url(s.redis_url, decode_responses=True)
        st = _wait_applied(r, s.namespace, published, worker)
        t_ingest = time.monotonic() - t_start

        print("[4/6] training: retrieval and ranking models")
        train_note = _train(s, ml, root)

        print("[5/6] starting the API and asking for recommendations")
        port = services.free_port()
        api = runtime.api(env, port, root / "api.log").start()
        children.append(api)
        runtime.wait_http(f"http://127.0.0.1:{port}/healthz", api)
        user = "196"
        resp = httpx.post(f"http://127.0.0.1:{port}/recommend", json={"user_id": user, "k": 10}, timeout=10).json()
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).json()

        titles = _titles(ml)
        applied = sum(v for k, v in st.items() if k.startswith("applied:"))
        print("[6/6] what happened")
        print(f"  events published      {published:>8}  ({r1.published} metadata, {r2.published} ratings, "
              f"{r3.published} retried duplicates, {len(HOSTILE)} malformed)")
        print(f"  events processed      {applied:>8}  (applied to Redis, each exactly once)")
        print(f"  duplicates skipped    {st.get('duplicates', 0):>8}")
        print(f"  dead-lettered         {st.get('dead_letters', 0):>8}  (topic {s.topic_dlq}, with reasons)")
        print(f"  ingest wall time      {t_ingest:>7.1f}s")
        print(f"  training              {train_note}")
        print(f"  readiness             {ready}")
        print(f"  recommendation for MovieLens user {user} (model {resp.get('model_version')}):")
        for i, item in enumerate(resp.get("items", []), 1):
            print(f"    {i:>2}. {titles.get(item['item_id'], item['item_id'])}  [{item['source']}, score {item['score']:.3g}]")
        print(f"done in {time.monotonic() - t_start:.0f}s; logs under {root}")
        return 0
    finally:
        for c in reversed(children):
            c.stop()
        kafka.stop()
        red.stop()


def _train(s: Settings, ml: MovieLens, root: Path) -> str:
    """Train the offline models when they are available; say what was done."""
    try:
        from offline.train_demo import train_for_demo
    except ImportError:
        return "skipped (offline trainer not installed)"
    return train_for_demo(s, ml, root)
