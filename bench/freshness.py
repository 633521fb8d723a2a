"""``streamrec bench freshness``: produce -> visible in the serving feature reads, under load.

A background producer sends ``--rate`` events/s (default 1,000) to the events
topic; meanwhile ``--probes`` probe clicks (a fresh user x item each) are
produced one at a time, and each is timed from just before ``send`` until
``click_count_by_item_1h`` for its item, read exactly as serving reads features
(``streams.features.all_reads`` + ``assemble``, one round trip), shows it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from tqdm import tqdm

from bench.common import mixed_events, private_infra, publish_vectors
from schemas.codec import encode
from schemas.events import Click, Impression
from streams.features import all_reads, assemble, feature_names
from streams.store_redis import RedisStore
from streamrec import runtime
from streamrec.batch_records import send_batches
from streamrec.kafka import ensure_topics, start_producer
from streamrec.publisher import event_key
from streamrec.settings import Settings

FEATURE = "click_count_by_item_1h"


async def background(s: Settings, rate: float, stop: threading.Event, sent: list[float],
                     started: threading.Event | None = None) -> None:
    p = await start_producer(s)
    events = mixed_events(200_000, t0=datetime.now(timezone.utc), spacing_s=1.0 / rate, prefix="bg")[2000:]
    # the clock starts once the events exist: starting it before generating them (~2 s of CPU) made the
    # first sends a catch-up burst of thousands of events instead of a steady rate
    t0 = time.monotonic()
    try:
        k = 0
        while not stop.is_set() and k < len(events):
            if started is not None and k and not started.is_set():
                started.set()
            # the events due in the next 20 ms, as the product's producers send them: batch records
            due = events[k:k + max(1, int(rate * 0.02))]
            for topic, evs in ((s.topic_impressions, [e for e in due if isinstance(e, Impression)]),
                               (s.topic_events, [e for e in due if not isinstance(e, Impression)])):
                await send_batches(p, topic, evs, s.publish_batch)
            k += len(due)
            ahead = k / rate - (time.monotonic() - t0)
            if ahead > 0:
                await asyncio.sleep(ahead)
        sent.append(k)
        sent.append(time.monotonic() - t0)
    finally:
        await p.stop()


async def probes(s: Settings, n: int, progress: bool = False, budget_s: float = 600.0,
                 give_up_s: float = 30.0, lost: list[int] | None = None) -> list[float]:
    """Latency of ``n`` probes, one at a time; stops early (with what it has) after ``budget_s``,
    or after a probe not visible within ``give_up_s`` (counted in ``lost``; without ``lost``
    that is an error)."""
    p = await start_producer(s, linger_ms=0)
    bar = tqdm(total=n, desc="freshness probes", unit="probe", disable=not progress, mininterval=0.5)
    deadline = time.monotonic() + budget_s
    client = aioredis.Redis.from_url(s.redis_url)
    store = RedisStore(client, s.namespace, follow_live=True)
    col = feature_names().index(FEATURE)
    out: list[float] = []
    try:
        for k in range(n):
            user, item = f"probe-u{k}", f"probe-i{k}"
            ev = Click(event_id=f"probe-{k}", ts=datetime.now(timezone.utc), user_id=user, item_id=item)
            t0 = time.perf_counter()
            await p.send(s.topic_events, key=event_key(ev), value=encode(ev))
            while True:
                now = datetime.now(timezone.utc)
                reads = all_reads(user, [item], now)
                _, x = assemble(await store.read(reads), user, [item], now)
                if x[0, col] >= 1:
                    break
                if time.perf_counter() - t0 > give_up_s:
                    if lost is None:
                        raise RuntimeError(f"probe {k} not visible after {give_up_s:.0f} s")
                    lost.append(k)
                    break
                await asyncio.sleep(0.001)
            if lost:
                print(f"freshness: probe {k} not visible after {give_up_s:.0f} s (the worker is behind "
                      "the background load); stopping", file=sys.stderr)
                break
            out.append((time.perf_counter() - t0) * 1000.0)
            bar.update(1)
            bar.set_postfix(last_ms=round(out[-1], 1))
            if time.monotonic() > deadline:
                print(f"freshness: time budget of {budget_s:.0f} s spent after {len(out)} of {n} probes "
                      "(the worker is behind the background load)", file=sys.stderr)
                break
            await asyncio.sleep(0.02)
    finally:
        bar.close()
        await p.stop()
        await client.aclose()
    return out


def run_freshness_bench(base: Settings, args: argparse.Namespace) -> dict[str, Any]:
    with private_infra(base) as (s, env):
        asyncio.run(ensure_topics(s))
        publish_vectors(s, items=2000)
        child = runtime.worker(env, s.state_dir / "worker.log").start()
        try:
            asyncio.run(probes(s, 3))  # worker up and assigned
            stop, started, sent, lost = threading.Event(), threading.Event(), [], []  # type: ignore[var-annotated]
            bg = threading.Thread(target=lambda: asyncio.run(background(s, float(args.rate or 1000.0), stop, sent,
                                                                        started)), daemon=True)
            bg.start()
            if not started.wait(60):
                raise RuntimeError("the background producer did not start sending within 60 s")
            time.sleep(3.0)  # the load runs steadily before the first probe
            try:
                lat = asyncio.run(probes(s, int(args.probes), progress=True, lost=lost))
            finally:
                stop.set()
                bg.join(30)
        finally:
            child.stop()
    # a probe given up on counts as give-up time: a lower bound of its latency
    arr = np.asarray(lat + [30_000.0] * len(lost))
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p99_ms": round(float(np.percentile(arr, 99)), 2),
        "max_ms": round(float(arr.max()), 2),
        "probes": len(lat) + len(lost),
        "probes_not_visible_after_30s": len(lost),
        "background_events_per_s": round(sent[0] / max(1e-9, sent[1]), 1) if sent else None,
    }
