"""``streamrec bench ingest``: events/s through Kafka -> worker -> Redis, against a raw baseline.

Both runs read the same pre-loaded topics on a private broker + Redis:

* worker: the real ``streamrec worker`` child process (Faust, every feature, labels,
  embeddings, one Lua apply per batch); rate = events applied / time, measured
  from its first applied batch to the last (start-up excluded);
* raw: one aiokafka consumer (no group, no decoding, no logic) making one
  pipelined Redis write (HINCRBY) per event, one pipeline per fetched batch.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

import orjson
import redis
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import mixed_events, private_infra, publish_vectors
from schemas.events import Impression
from streams import keys
from streamrec import fetch_backoff, runtime
from streamrec.kafka import ensure_topics, start_producer
from streamrec.batch_records import send_batches
from streamrec.settings import Settings


async def preload(s: Settings, n: int, record_batch: int) -> tuple[int, int]:
    """(events, records) written; ``record_batch`` events per record (1 = one record per event)."""
    await ensure_topics(s)
    p = await start_producer(s, linger_ms=20)
    sent = records = 0
    try:
        events = mixed_events(n)
        for start in range(0, len(events), 5000):
            chunk = events[start:start + 5000]
            futs = []
            for topic, evs in ((s.topic_impressions, [e for e in chunk if isinstance(e, Impression)]),
                               (s.topic_events, [e for e in chunk if not isinstance(e, Impression)])):
                futs += await send_batches(p, topic, evs, record_batch)
            await asyncio.gather(*futs)  # type: ignore[arg-type]
            sent += len(chunk)
            records += len(futs)
    finally:
        await p.stop()
    return sent, records


def applied(r: redis.Redis, ns: str) -> int:
    st = r.hgetall(keys.namespaced(ns, keys.STATS))
    return sum(int(v) for k, v in st.items() if k.decode().startswith("applied:"))


def redis_cpu_s(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_worker(s: Settings, env: dict[str, str], n: int) -> tuple[float, dict[str, Any]]:
    """Events/s, plus CPU per event of the worker process and of Redis over the same span
    (CPU time does not shrink when other jobs share the machine, wall-clock rates do)."""
    r = redis.Redis.from_url(s.redis_url)
    # every Lua apply over 1 ms lands in the slow log: how long one apply holds Redis
    r.config_set("slowlog-log-slower-than", 1000)
    r.config_set("slowlog-max-len", 100_000)
    r.slowlog_reset()
    r.config_resetstat()
    child = runtime.worker(env | {"STREAMREC_WORKER_BATCH": str(s.worker_batch),
                                  "STREAMREC_WORKER_APPLY_EVENTS": str(s.worker_apply_events),
                                  "STREAMREC_WORKER_OVERLAP": str(s.worker_overlap).lower()},
                           s.state_dir / "worker.log")
    child.start()
    assert child.proc is not None
    try:
        t_first = c_first = None
        cpu0 = (0.0, 0.0)
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            c = applied(r, s.namespace)
            now = time.monotonic()
            if t_first is None and c > 0:
                t_first, c_first = now, c
                cpu0 = (process_cpu_s(child.proc.pid), redis_cpu_s(r))
            if c >= n:
                break
            if not child.alive():
                raise RuntimeError(f"worker died: {child.log_tail(10)}")
            time.sleep(0.05)
        else:
            raise RuntimeError(f"worker applied only {applied(r, s.namespace)} of {n} events")
        assert t_first is not None and c_first is not None
        done = n - c_first
        rate = done / max(1e-9, now - t_first)
        cpu = {"worker_cpu_us_per_event": round((process_cpu_s(child.proc.pid) - cpu0[0]) / done * 1e6, 1),
               "redis_cpu_us_per_event": round((redis_cpu_s(r) - cpu0[1]) / done * 1e6, 1)}
        metrics = {k.decode(): v.decode() for k, v in
                   r.hgetall(keys.namespaced(s.namespace, keys.worker_metrics(s.worker_instance))).items()}
        return rate, cpu | apply_times(r) | {"worker_metrics": metrics}
    finally:
        child.stop()
        r.close()


def apply_times(r: redis.Redis) -> dict[str, Any]:
    """Mean and slowest Lua apply (EVALSHA; the context reads' script runs as EVALSHA_RO) in Redis,
    from commandstats and the slow log; and the calls per second of each command inside them."""
    stats = r.info("commandstats")
    st = stats.get("cmdstat_evalsha", {})
    slow = sorted((e["duration"] for e in r.slowlog_get(100_000)
                   if (e["command"] or b"").split(b" ", 1)[0].lower() == b"evalsha"), reverse=True)
    return {"applies": int(st.get("calls", 0)),
            "apply_ms_mean": round(float(st.get("usec_per_call", 0.0)) / 1000, 2),
            "apply_ms_max": round(slow[0] / 1000, 1) if slow else None,
            "applies_over_50ms": sum(1 for d in slow if d > 50_000),
            "redis_calls": {k[len("cmdstat_"):]: int(v["calls"]) for k, v in stats.items()
                            if int(v.get("calls", 0)) >= 100},
            "redis_usec": {k[len("cmdstat_"):]: int(v["usec"]) for k, v in stats.items()
                           if int(v.get("calls", 0)) >= 100}}


async def run_raw(s: Settings, n: int) -> float:
    import redis.asyncio as aioredis

    fetch_backoff.install(s.kafka_empty_fetch_backoff_ms)  # the same consumer set-up as the worker's
    c = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest")
    rc = aioredis.Redis.from_url(s.redis_url)
    await c.start()
    try:
        tps = [TopicPartition(t, p) for t in (s.topic_events, s.topic_impressions) for p in range(s.topic_partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        got = 0
        t0 = time.monotonic()  # from the first fetch: with batch records one fetch can hold most events
        while got < n:
            batch = await c.getmany(timeout_ms=500, max_records=5000)
            pipe = rc.pipeline(transaction=False)
            k = 0
            for msgs in batch.values():
                for m in msgs:
                    # one write per event: a batch record is split into its events first
                    n_ev = len(orjson.loads(m.value)) if m.value and m.value[:1] == b"[" else 1
                    for _ in range(n_ev):
                        pipe.hincrby("rawbench:counts", str(m.partition), 1)
                    k += n_ev
            if k:
                await pipe.execute()
                got += k
        return got / max(1e-9, time.monotonic() - t0)
    finally:
        await c.stop()
        await rc.aclose()


def run_ingest_bench(base: Settings, args: argparse.Namespace) -> dict[str, Any]:
    n = int(args.events)
    with private_infra(base) as (s, env):
        record_batch = int(getattr(args, "record_batch", None) or s.publish_batch)
        sent, records = asyncio.run(preload(s, n, record_batch))
        publish_vectors(s, items=2000)
        worker_rate, extra = run_worker(s, env, sent)
        raw_rate = asyncio.run(run_raw(s, sent))
    return {
        "events": sent,
        "events_per_s": round(worker_rate, 1),
        "raw_events_per_s": round(raw_rate, 1),
        "ratio": round(worker_rate / raw_rate, 3) if raw_rate else None,
        "worker_batch": s.worker_batch,
        "worker_apply_events": s.worker_apply_events,
        "worker_overlap": s.worker_overlap,
        "record_batch": record_batch,
        "records": records,
        **extra,
    }
