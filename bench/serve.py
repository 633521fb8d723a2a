"""Serving benchmark: uvicorn on loopback, a 10,000-item catalogue, a trained LightGBM model,
closed-loop load from a separate process; p50/p95/p99, rps, per-stage p99, and /healthz as floor.

    streamrec bench serve [--json PATH] [--clients N] [--duration S] [--items N]

Starts its own Redis and broker on free ports (the shared ones are untouched),
writes the online state and features of synthetic events, publishes a model
with item vectors to a temporary registry, then starts ``streamrec serve`` as a
child process (one worker process).  Stage times come from the API's
``Server-Timing`` header; ``cpu_ms_per_request`` is the CPU time of the API, Redis
and the broker over each run divided by its requests, and the load average before
and after is recorded, since the two cores are often shared.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import redis as syncredis

from bench.common import cleanup
from bench.ingest import process_cpu_s, redis_cpu_s
from bench.raw_http import exchange, request_bytes
from bench.serve_data import apply_all, catalogue, events, publish_model
from streamrec import runtime, services

STAGES = ("candidates", "features", "score", "mmr", "total")
SWEEP = (1, 2, 4)
"""Client concurrencies measured besides ``--clients`` (half the duration each), under ``sweep``."""


def _load(url: str, path: str, bodies: list[dict[str, Any]], clients: int, duration: float, warmup: float,
          out: Any) -> None:
    """The closed-loop load generator: a raw asyncio HTTP/1.1 client, one keep-alive connection per
    client, pre-encoded requests; responses are only timed and kept, and parsed after the run, so
    the client spends as little of the shared CPU as possible."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    reqs = [request_bytes(f"{host}:{port}", path, b) for b in bodies]

    async def main() -> dict[str, Any]:
        lat: list[float] = []
        kept: list[tuple[bytes, bytes]] = []
        done = [0]  # every answered request, warm-up included (the CPU figures span the warm-up too)
        start = time.perf_counter()
        measure_from, stop_at = start + warmup, start + warmup + duration

        async def one(n: int) -> None:
            reader, writer = await asyncio.open_connection(host, int(port))
            i = n
            try:
                while True:
                    t0 = time.perf_counter()
                    if t0 >= stop_at:
                        return
                    res = await exchange(reader, writer, reqs[i % len(reqs)])
                    t1 = time.perf_counter()
                    done[0] += 1
                    i += clients
                    if t0 >= measure_from:
                        lat.append(t1 - t0)
                        kept.append(res)
            finally:
                writer.close()

        await asyncio.gather(*(one(n) for n in range(clients)))
        return {**_summarise(lat, kept, duration), "requests_total": done[0]}

    out.put(asyncio.run(main()))


def _summarise(lat: list[float], kept: list[tuple[bytes, bytes]], seconds: float) -> dict[str, Any]:
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    errors = 0
    for head, body in kept:
        if head[9:12] != b"200" or b'"degraded":true' in body:
            errors += 1
        at = head.lower().find(b"server-timing:")
        if at < 0:
            continue
        for part in head[at + 14:head.index(b"\r\n", at)].decode().split(","):
            name, _, dur = part.strip().partition(";dur=")
            if name in stages and dur:
                stages[name].append(float(dur))
    return {"lat": lat, "stages": stages, "errors": errors, "seconds": seconds}


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


def run_bench(clients: int = 2, duration: float = 20.0, n_items: int = 10_000, n_users: int = 1000,
              n_events: int = 40_000) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="streamrec-bench-"))
    red = services.start_redis(services.free_port(), root / "redis", aof=False)
    kafka = services.start_kafka(services.free_port(), root / "kafka")
    api: runtime.Child | None = None
    ok = False
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
        runs: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        load_before = os.getloadavg()
        rclient = syncredis.Redis(port=red.port)
        assert api.proc is not None
        pids = {"api": api.proc.pid, "broker": kafka.proc.pid}
        for c in sorted(set(SWEEP) | {clients}):  # the reported concurrency runs for the full duration
            d = duration if c == clients else max(2.0, duration / 2)
            before = cpu_seconds(pids, rclient)
            rec = drive(url, "/recommend", bodies, c, d)
            rec["cpu_s"] = {k: v - before[k] for k, v in cpu_seconds(pids, rclient).items()}
            runs[c] = rec, drive(url, "/healthz", [{}], c, d / 2)
        rclient.close()
        load_after = os.getloadavg()
        import httpx

        one = httpx.post(url + "/recommend", json={"user_id": "user1", "k": 20, "explain": True}).json()
        metrics = httpx.get(url + "/metrics").text
        dropped = _metric(metrics, 'streamrec_impressions_total{outcome="dropped"}')
        sent = _metric(metrics, 'streamrec_impressions_total{outcome="sent"}')
        ok = True
    finally:
        if api is not None:
            api.stop()
        kafka.stop()
        red.stop()
        cleanup(root, ok)
    out = _figures(*runs[clients])
    out.update({
        "clients": clients, "duration_s": duration, "items": n_items, "client": "raw asyncio HTTP/1.1, keep-alive",
        "model_version": one.get("model_version"), "items_returned": len(one.get("items", [])),
        "impressions_sent": sent, "impressions_dropped": dropped, "prepare_s": round(prep_s, 1),
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "sweep": {str(c): {k: v for k, v in _figures(*r).items() if k not in ("candidates", "k")}
                  for c, r in runs.items() if c != clients},
    })
    return out


def _figures(rec: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    lat_ms = [x * 1000 for x in rec["lat"]]
    return {
        "p50_ms": round(_pct(lat_ms, 50), 3), "p95_ms": round(_pct(lat_ms, 95), 3),
        "p99_ms": round(_pct(lat_ms, 99), 3), "rps": round(len(lat_ms) / rec["seconds"], 1),
        "floor_p50_ms": round(_pct([x * 1000 for x in floor["lat"]], 50), 3),
        "floor_p99_ms": round(_pct([x * 1000 for x in floor["lat"]], 99), 3),
        "floor_rps": round(len(floor["lat"]) / floor["seconds"], 1),
        "candidates": 300, "k": 20,
        "stages": {s: round(_pct(v, 99), 3) for s, v in rec["stages"].items()},
        "stages_p50": {s: round(_pct(v, 50), 3) for s, v in rec["stages"].items()},
        "errors_or_degraded": rec["errors"],
        # CPU time per /recommend request of each process, from the same run (the machine's 2 cores are shared):
        # the CPU of the whole drive (warm-up included) over every request it answered
        "cpu_ms_per_request": {k: round(1000 * v / max(1, rec.get("requests_total", len(lat_ms))), 3)
                               for k, v in rec.get("cpu_s", {}).items()},
    }


def cpu_seconds(pids: dict[str, int], rclient: syncredis.Redis) -> dict[str, float]:
    """CPU seconds so far of the given processes (Linux /proc) and of Redis (INFO)."""
    out = {name: process_cpu_s(pid) for name, pid in pids.items()}
    out["redis"] = redis_cpu_s(rclient)
    return out


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
    """Wait until the item-feature and neighbour caches hold the catalogue (start-up warm-up)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(url + "/admin/status").json()
        if min(status.get("item_features_cached", 0), status.get("neighbours_cached", n_items)) >= n_items:
            return
        time.sleep(0.5)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def main(json_path: str | None = None, clients: int = 2, duration: float = 20.0, items: int = 10_000) -> int:
    from bench.machine import measured

    res = measured(lambda: run_bench(clients=clients, duration=duration, n_items=items))
    text = json.dumps(res, indent=2)
    print(text)
    if json_path:
        Path(json_path).write_text(text + "\n")
    return 0
