"""``streamrec bench soak``: sustained ingest plus recommend traffic, watching memory and latency.

Runs on a private broker and Redis: a worker and an API child, a producer at
``--rate`` events/s (2,000 by default) with a few hostile records injected on
purpose, and ``--rps`` /recommend requests per second (100 by default).  Every
``--sample-s`` seconds it records throughput, request p99 and the RSS of the
worker and the API.  Writes JSON and a PNG plot.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import orjson
import redis

from bench.common import private_infra
from schemas.codec import encode
from streamrec.batch_records import send_batches
from schemas.events import Click, Event, ItemMeta, Rate, View
from streams import keys
from streamrec import runtime, services
from streamrec.kafka import start_producer
from streamrec.settings import Settings

HOSTILE_EVERY_S = 10.0
HOSTILE = [b"not json", orjson.dumps({"type": "rate", "event_id": "h", "rating": 9}), b"[" * 3000]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


@dataclass
class Sample:
    t_s: float
    events_per_s: float
    requests_per_s: float
    p99_ms: float
    worker_rss_mb: float
    api_rss_mb: float


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    requests: int = 0
    hostile: int = 0
    published: int = 0


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
    try:
        now = datetime.now(timezone.utc)
        for it in range(items):
            await p.send(s.topic_events, encode(ItemMeta(event_id=f"meta-{it}", ts=now, item_id=f"i{it}",
                                                         categories=[f"c{it % 12}"])), key=f"i{it}".encode())
        t0 = time.monotonic()
        next_hostile = t0 + HOSTILE_EVERY_S
        i = 0
        while time.monotonic() < until:
            target = int((time.monotonic() - t0) * rate)
            due = [make_event(rng, k, time.time(), users, items) for k in range(i, target)]
            # as the product's producers do: batch records of the events due now, per partition
            await send_batches(p, s.topic_events, due, s.publish_batch)
            i = max(i, target)
            if time.monotonic() >= next_hostile:
                for h in HOSTILE:
                    await p.send(s.topic_events, h, key=b"hostile")
                run.hostile += len(HOSTILE)
                next_hostile += HOSTILE_EVERY_S
            run.published = i
            await asyncio.sleep(0.01)
        await p.flush()
    finally:
        await p.stop()


async def load(url: str, run: Run, rps: float, until: float, users: int) -> None:
    rng = random.Random(1)
    async with httpx.AsyncClient(timeout=5.0) as client:

        async def one() -> None:
            t = time.perf_counter()
            try:
                r = await client.post(url, json={"user_id": f"u{rng.randrange(users)}", "k": 20})
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            run.latencies.append((time.perf_counter() - t) * 1000)
            run.requests += 1
            run.errors += 0 if ok else 1

        t0 = time.monotonic()
        n = 0
        tasks: set[asyncio.Task[None]] = set()
        while time.monotonic() < until:
            target = int((time.monotonic() - t0) * rps)
            while n < target:
                task = asyncio.create_task(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            await asyncio.sleep(0.002)
        if tasks:
            await asyncio.gather(*tasks)


async def sample(r: redis.Redis, ns: str, run: Run, worker: runtime.Child, api: runtime.Child,
                 every: float, until: float) -> None:
    t0 = time.monotonic()
    last_applied, last_req, last_lat = 0, 0, 0
    while time.monotonic() < until:
        await asyncio.sleep(every)
        st = r.hgetall(keys.namespaced(ns, keys.STATS))
        applied = sum(int(v) for k, v in st.items() if k.startswith(b"applied:"))
        lat = run.latencies[last_lat:]
        run.samples.append(Sample(
            t_s=time.monotonic() - t0,
            events_per_s=(applied - last_applied) / every,
            requests_per_s=(run.requests - last_req) / every,
            p99_ms=float(np.percentile(lat, 99)) if lat else float("nan"),
            worker_rss_mb=rss_mb(worker.proc.pid) if worker.proc else float("nan"),
            api_rss_mb=rss_mb(api.proc.pid) if api.proc else float("nan"),
        ))
        last_applied, last_req, last_lat = applied, run.requests, len(run.latencies)


def growth(samples: list[Sample], attr: str, minutes: float) -> float:
    """RSS growth from minute 1 to the end, as a fraction of the minute-1 value."""
    first = [getattr(x, attr) for x in samples if 60.0 <= x.t_s < 90.0] or [getattr(samples[0], attr)]
    last = [getattr(x, attr) for x in samples[-3:]]
    return float(np.mean(last) / np.mean(first) - 1.0)


def run_soak(s: Settings, minutes: float, rate: float, rps: float, sample_s: float,
             png: Path | None, users: int = 2000, items: int = 5000) -> dict[str, object]:
    with private_infra(s) as (ps, env):
        root = Path(env["STREAMREC_STATE_DIR"]).parent
        worker = runtime.worker(env, root / "worker.log").start()
        port = services.free_port()
        api = runtime.api(env, port, root / "api.log").start()
        try:
            runtime.wait_http(f"http://127.0.0.1:{port}/healthz", api)
            r = redis.Redis.from_url(ps.redis_url)
            run = Run()
            until = time.monotonic() + minutes * 60

            async def main() -> None:
                await asyncio.gather(
                    produce(ps, run, rate, until, users, items),
                    load(f"http://127.0.0.1:{port}/recommend", run, rps, until, users),
                    sample(r, ps.namespace, run, worker, api, sample_s, until),
                )

            asyncio.run(main())
            time.sleep(3)
            st = {k.decode(): int(v) for k, v in r.hgetall(keys.namespaced(ps.namespace, keys.STATS)).items()}
        finally:
            api.stop()
            worker.stop()
    steady = [x for x in run.samples if x.t_s >= 60.0] or run.samples
    result: dict[str, object] = {
        "minutes": minutes,
        "target_events_per_s": rate,
        "target_requests_per_s": rps,
        "events_published": run.published,
        "events_per_s_mean": float(np.mean([x.events_per_s for x in steady])),
        "requests": run.requests,
        "request_errors": run.errors,
        "p99_ms": float(np.percentile(run.latencies, 99)) if run.latencies else None,
        "worker_rss_growth": growth(run.samples, "worker_rss_mb", minutes),
        "api_rss_growth": growth(run.samples, "api_rss_mb", minutes),
        "hostile_injected": run.hostile,
        "dead_letters": st.get("dead_letters", 0),
        "samples": [x.__dict__ for x in run.samples],
    }
    if png is not None:
        plot(run.samples, png)
        result["plot"] = str(png)
    return result


def plot(samples: list[Sample], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [x.t_s / 60 for x in samples]
    fig, ax = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    ax[0].plot(t, [x.events_per_s for x in samples], label="events/s applied")
    ax[0].plot(t, [x.requests_per_s for x in samples], label="requests/s")
    ax[0].legend()
    ax[1].plot(t, [x.p99_ms for x in samples], color="tab:red")
    ax[1].set_ylabel("p99 ms (per sample)")
    ax[2].plot(t, [x.worker_rss_mb for x in samples], label="worker RSS MB")
    ax[2].plot(t, [x.api_rss_mb for x in samples], label="API RSS MB")
    ax[2].legend()
    ax[2].set_xlabel("minutes")
    fig.suptitle("streamrec soak")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    plt.close(fig)
