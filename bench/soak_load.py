"""The soak's load: the event producer, the /recommend client, and what they counted.

``produce`` sends ``rate`` events/s as the product's producers do (batch records per
partition), with the ``HOSTILE`` records every ``HOSTILE_EVERY_S`` seconds; ``load`` sends
``rps`` open-loop /recommend requests over keep-alive connections.  Both count into one
``Run``, which ``bench.soak`` samples.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.raw_http import exchange, request_bytes
from bench.soak_ledger import Sent
from schemas.events import Click, Event, ItemMeta, Rate, View
from streamrec.batch_records import send_runs
from streamrec.kafka import start_producer
from streamrec.settings import Settings

HOSTILE_EVERY_S = 10.0
HOSTILE = [b"not json", orjson.dumps({"type": "rate", "event_id": "h", "rating": 9}), b"[" * 3000]


@dataclass
class Sample:
    t_s: float
    events_per_s: float
    requests_per_s: float
    p99_ms: float
    worker_rss_mb: float
    api_rss_mb: float
    queued_events: int = 0  # published by the soak, not yet applied


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    requests: int = 0
    hostile: int = 0
    published: int = 0
    degraded: int = 0
    metas: int = 0
    sent: list[Sent] = field(default_factory=list)  # every record the producer published (the ledger)
    send_failed: int = 0  # records the broker never acknowledged (not published)


def make_event(rng: random.Random, i: int, now: float, users: int, items: int) -> Event:
    from datetime import datetime, timezone

    ts = datetime.fromtimestamp(now, tz=timezone.utc)
    u, it = f"u{rng.randrange(users)}", f"i{rng.randrange(items)}"
    k = rng.random()
    if k < 0.5:
        return View(event_id=f"soak-{i}", ts=ts, user_id=u, item_id=it, dwell_ms=rng.randrange(0, 60_000))
    if k < 0.85:
        return Click(event_id=f"soak-{i}", ts=ts, user_id=u, item_id=it)
    return Rate(event_id=f"soak-{i}", ts=ts, user_id=u, item_id=it, rating=rng.randint(1, 5))


async def produce(s: Settings, run: Run, rate: float, until: float, users: int, items: int) -> None:
    from datetime import datetime, timezone

    rng = random.Random(0)
    p = await start_producer(s)
    pending: list[tuple[asyncio.Future[Any], tuple[str, ...] | None, bool]] = []

    async def send(events: list[Event]) -> None:
        for fut, members in await send_runs(p, s.topic_events, events, s.publish_batch):
            pending.append((fut, tuple(e.event_id for e in members), False))

    try:
        now = datetime.now(timezone.utc)
        metas = [ItemMeta(event_id=f"meta-{it}", ts=now, item_id=f"i{it}", categories=[f"c{it % 12}"])
                 for it in range(items)]
        await send(metas)
        run.metas = len(metas)
        t0 = time.monotonic()
        next_hostile = t0 + HOSTILE_EVERY_S
        i = 0
        while time.monotonic() < until:
            target = int((time.monotonic() - t0) * rate)
            due = [make_event(rng, k, time.time(), users, items) for k in range(i, target)]
            # as the product's producers do: batch records of the events due now, per partition
            await send(due)
            i = max(i, target)
            if time.monotonic() >= next_hostile:
                for h in HOSTILE:
                    pending.append((await p.send(s.topic_events, h, key=b"hostile"), None, h[:1] == b"["))
                run.hostile += len(HOSTILE)
                next_hostile += HOSTILE_EVERY_S
            run.published = i
            await asyncio.sleep(0.01)
        await p.flush()
    finally:
        await p.stop()
        for fut, ids, array in pending:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                md = fut.result()
                run.sent.append(Sent(md.partition, md.offset, ids, array))
            else:
                run.send_failed += 1


async def load(url: str, run: Run, rps: float, until: float, users: int, conns: int = 8) -> None:
    """Open-loop ``rps`` requests/s over a pool of keep-alive connections (a raw HTTP/1.1 client,
    cheap on the shared CPU); a request that finds no free connection waits for one."""
    rng = random.Random(1)
    host, rest = url.split("//", 1)[1].split(":", 1)
    port, path = rest.split("/", 1)
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await asyncio.open_connection(host, int(port)))

    async def one(req: bytes) -> None:
        t = time.perf_counter()
        conn = await pool.get()
        ok = False
        try:
            head, body = await asyncio.wait_for(exchange(conn[0], conn[1], req), 5.0)
            ok = head[9:12] == b"200"
            run.degraded += b'"degraded":true' in body
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            conn[1].close()
            conn = await asyncio.open_connection(host, int(port))
        finally:
            pool.put_nowait(conn)
        run.latencies.append((time.perf_counter() - t) * 1000)
        run.requests += 1
        run.errors += 0 if ok else 1

    t0 = time.monotonic()
    n = 0
    tasks: set[asyncio.Task[None]] = set()
    while time.monotonic() < until:
        target = int((time.monotonic() - t0) * rps)
        while n < target:
            req = request_bytes(f"{host}:{port}", "/" + path, {"user_id": f"u{rng.randrange(users)}", "k": 20})
            task = asyncio.create_task(one(req))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.sleep(0.002)
    if tasks:
        await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait()[1].close()
