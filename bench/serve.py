"""Serving benchmark: uvicorn on loopback, a 10,000-item catalogue, a trained LightGBM model,
closed-loop load from a separate process; p50/p95/p99, rps, per-stage p99, and /healthz as floor.

    streamrec bench serve [--json PATH] [--clients N] [--duration S] [--items N]

Starts its own Redis and broker on free ports (the shared ones are untouched),
writes the online state and features of synthetic events, publishes a model
with item vectors to a temporary registry, then starts ``streamrec serve`` as a
child process (one worker process).  Stage times come from the API's
``Server-Timing`` header.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bench.serve_data import apply_all, catalogue, events, publish_model
from streamrec import runtime, services

STAGES = ("candidates", "features", "score", "mmr", "total")


def _load(url: str, path: str, bodies: list[dict[str, Any]], clients: int, duration: float, warmup: float,
          out: Any) -> None:
    import httpx

    async def main() -> dict[str, Any]:
        lat: list[float] = []
        stages: dict[str, list[float]] = {s: [] for s in STAGES}
        errors = 0
        start = time.perf_counter()
        measure_from, stop_at = start + warmup, start + warmup + duration
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as c:
            async def one(n: int) -> None:
                nonlocal errors
                i = n
                while True:
                    t0 = time.perf_counter()
                    if t0 >= stop_at:
                        return
                    body = bodies[i % len(bodies)]
                    i += clients
                    r = await (c.post(path, json=body) if body else c.get(path))
                    t1 = time.perf_counter()
                    if t0 < measure_from:
                        continue
                    if r.status_code != 200 or (body and r.json().get("degraded")):
                        errors += 1
                    lat.append(t1 - t0)
                    for part in r.headers.get("server-timing", "").split(","):
                        name, _, dur = part.strip().partition(";dur=")
                        if name in stages and dur:
                            stages[name].append(float(dur))
            await asyncio.gather(*(one(n) for n in range(clients)))
        return {"lat": lat, "stages": stages, "errors": errors, "seconds": duration}

    out.put(asyncio.run(main()))


def drive(url: str, path: str, bodies: list[dict[str, Any]], clients: int, duration: float,
          warmup: float = 2.0) -> dict[str, Any]:
    """Closed-loop load from a separate process."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_load, args=(url, path, bodies, clients, duration, warmup, q))
    p.start()
    res: dict[str, Any] = q.get(timeout=warmup + duration + 120)
    p.join(30)
    return res


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


async def _prepare(redis_port: int, ns: str, n_items: int, n_users: int, n_events: int) -> None:
    import redis.asyncio as aioredis

    from streams.store_redis import RedisStore

    ids, cats, _ = catalogue(n_items, 50, 32)
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{redis_port}/0", socket_timeout=30)
    try:
        await apply_all(RedisStore(client, ns), events(ids, cats, n_users, n_events, datetime.now(timezone.utc)),
                        datetime.now(timezone.utc))
    finally:
        await client.aclose()


def run_bench(clients: int = 8, duration: float = 20.0, n_items: int = 10_000, n_users: int = 1000,
              n_events: int = 40_000) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="streamrec-bench-"))
    red = services.start_redis(services.free_port(), root / "redis", aof=False)
    kafka = services.start_kafka(services.free_port(), root / "kafka")
    api: runtime.Child | None = None
    try:
        ns = "bench"
        t0 = time.perf_counter()
        asyncio.run(_prepare(red.port, ns, n_items, n_users, n_events))
        prep_s = time.perf_counter() - t0
        ids, _, vecs = catalogue(n_items, 50, 32)
        version = publish_model(root / "models", root / "work", datetime.now(timezone.utc), ann=(ids, vecs),
                                rounds=100)
        port = services.free_port()
        env = {
            "STREAMREC_REDIS_URL": f"redis://127.0.0.1:{red.port}/0",
            "STREAMREC_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka.port}",
            "STREAMREC_NAMESPACE": ns,
            "STREAMREC_STATE_DIR": str(root / "state"),
            "STREAMREC_SERVING_REGISTRY_DIR": str(root / "models"),
            "STREAMREC_SERVING_LOG_LEVEL": "WARNING",
            "STREAMREC_SERVING_MAX_CANDIDATES": "300",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",  # one worker process, no thread teams
        }
        asyncio.run(_topics(env))
        api = runtime.api(env, port, root / "api.log").start()
        url = f"http://127.0.0.1:{port}"
        runtime.wait_http(url + "/healthz", api, 60)
        _wait_model(url, version)
        _wait_warm(url, n_items)
        bodies = [{"user_id": f"user{u}", "k": 20} for u in range(n_users)]
        rec = drive(url, "/recommend", bodies, clients, duration)
        floor = drive(url, "/healthz", [{}], clients, duration / 2)
        import httpx

        one = httpx.post(url + "/recommend", json={"user_id": "user1", "k": 20, "explain": True}).json()
        dropped = _metric(httpx.get(url + "/metrics").text, 'streamrec_impressions_total{outcome="dropped"}')
        sent = _metric(httpx.get(url + "/metrics").text, 'streamrec_impressions_total{outcome="sent"}')
    finally:
        if api is not None:
            api.stop()
        kafka.stop()
        red.stop()
    lat_ms = [x * 1000 for x in rec["lat"]]
    return {
        "p50_ms": round(_pct(lat_ms, 50), 3), "p95_ms": round(_pct(lat_ms, 95), 3),
        "p99_ms": round(_pct(lat_ms, 99), 3), "rps": round(len(lat_ms) / rec["seconds"], 1),
        "floor_p99_ms": round(_pct([x * 1000 for x in floor["lat"]], 99), 3),
        "floor_rps": round(len(floor["lat"]) / floor["seconds"], 1),
        "candidates": 300, "k": 20,
        "stages": {s: round(_pct(v, 99), 3) for s, v in rec["stages"].items()},
        "stages_p50": {s: round(_pct(v, 50), 3) for s, v in rec["stages"].items()},
        "clients": clients, "duration_s": duration, "errors_or_degraded": rec["errors"], "items": n_items,
        "model_version": one.get("model_version"), "items_returned": len(one.get("items", [])),
        "impressions_sent": sent, "impressions_dropped": dropped, "prepare_s": round(prep_s, 1),
    }


async def _topics(env: dict[str, str]) -> None:
    from streamrec.kafka import ensure_topics
    from streamrec.settings import Settings

    await ensure_topics(Settings(kafka_bootstrap=env["STREAMREC_KAFKA_BOOTSTRAP"]))


def _wait_model(url: str, version: str, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = httpx.post(url + "/recommend", json={"user_id": "user1", "k": 20}).json()
        if got.get("model_version") == version:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the API did not load model {version} within {timeout}s")


def _wait_warm(url: str, n_items: int, timeout: float = 120.0) -> None:
    """Wait until the item-feature cache holds the catalogue (start-up warm-up)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(url + "/admin/status").json().get("item_features_cached", 0) >= n_items:
            return
        time.sleep(0.5)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def main(json_path: str | None = None, clients: int = 8, duration: float = 20.0, items: int = 10_000) -> int:
    res = run_bench(clients=clients, duration=duration, n_items=items)
    text = json.dumps(res, indent=2)
    print(text)
    if json_path:
        Path(json_path).write_text(text + "\n")
    return 0
