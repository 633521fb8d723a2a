"""``streamrec bench soak``: sustained ingest plus recommend traffic, watching memory and latency.

Runs on a private broker and Redis: a worker and an API child, a producer at
``--rate`` events/s (2,000 by default) with a few hostile records injected on
purpose, and ``--rps`` /recommend requests per second (100 by default).  Every
``--sample-s`` seconds it records throughput, request p99 and the RSS of the
worker and the API.  Writes JSON and a PNG plot.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import redis
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import private_infra
from bench.serve import cpu_seconds
from bench.soak_checks import soak_checks
from bench.soak_ledger import Sent, marks_to_check, reconcile
from bench.soak_load import Run, Sample, load, produce
from streams import keys
from streamrec import runtime, services
from streamrec.kafka import ensure_topics
from streamrec.settings import Settings


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")




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
            queued_events=max(0, run.published + run.metas - _published_of(st)),
        ))
        last_applied, last_req, last_lat = applied, run.requests, len(run.latencies)


def _broker_pid(root: Path) -> int | None:
    """The private broker's pid: the process started with ``--data-dir <root>/kafka``."""
    want = str(root / "kafka").encode()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if want in (d / "cmdline").read_bytes().split(b"\0"):
                    return int(d.name)
            except OSError:
                continue
    return None


def _cpu(worker: runtime.Child, api: runtime.Child, root: Path, r: redis.Redis) -> dict[str, float]:
    """CPU seconds so far of every process of the run: where the two cores go."""
    pids = {name: child.proc.pid for name, child in (("worker", worker), ("api", api)) if child.proc}
    broker = _broker_pid(root)
    if broker:
        pids["broker"] = broker
    t = os.times()
    info = r.info("cpu")  # forked children: AOF rewrites (and RDB saves), not in Redis's own figure
    children = float(info.get("used_cpu_user_children", 0.0)) + float(info.get("used_cpu_sys_children", 0.0))
    return {"broker": 0.0, **cpu_seconds(pids, r), "redis_children": children,
            "load_and_producer": t.user + t.system}


def fallback_reasons(metrics_url: str) -> dict[str, float]:
    """The API's ``streamrec_fallbacks_total`` by reason (why answers were degraded), from /metrics."""
    import httpx

    out: dict[str, float] = {}
    try:
        text = httpx.get(metrics_url, timeout=10).text
    except httpx.HTTPError:
        return out
    for line in text.splitlines():
        if line.startswith("streamrec_fallbacks_total{"):
            labels, value = line.rsplit(" ", 1)
            reason = labels.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = float(value)
    return out


def applied_published(r: redis.Redis, ns: str) -> int:
    """Applied events the soak published (serving's own impressions are applied too: not counted)."""
    return _published_of(r.hgetall(keys.namespaced(ns, keys.STATS)))


def _published_of(stats: dict[bytes, bytes]) -> int:
    return sum(int(v) for k, v in stats.items() if k.startswith(b"applied:") and k != b"applied:impression")


def ledger_ends(sent: list[Sent]) -> dict[int, int]:
    """Events-topic partition -> the offset after the last record the soak published to it."""
    ends: dict[int, int] = {}
    for x in sent:
        ends[x.partition] = max(ends.get(x.partition, 0), x.offset + 1)
    return ends


def consumed(r: redis.Redis, ns: str, ends: dict[int, int]) -> bool:
    """Whether the worker's offsets watermark has reached ``ends`` on every partition."""
    wm = r.hgetall(keys.namespaced(ns, keys.WATERMARK))
    return all(int(wm.get(str(p).encode(), 0)) >= end for p, end in ends.items())


async def log_starts(s: Settings, partitions: list[int]) -> dict[int, int]:
    c = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, group_id=None)
    await c.start()
    try:
        tps = [TopicPartition(s.topic_events, p) for p in partitions]
        return {tp.partition: off for tp, off in (await c.beginning_offsets(tps)).items()}
    finally:
        await c.stop()


def marked_ids(r: redis.Redis, ns: str, ids: list[str], chunk: int = 20_000) -> Callable[[str], bool]:
    """Which of ``ids`` left a dedupe mark (applied events, dead-lettered records), asked in chunks."""
    found: set[str] = set()
    for k in range(0, len(ids), chunk):
        part = ids[k:k + chunk]
        pipe = r.pipeline(transaction=False)
        for i in part:
            pipe.exists(keys.namespaced(ns, keys.dedupe(i)))
        found.update(i for i, n in zip(part, pipe.execute()) if n)
    return found.__contains__


def worker_times(r: redis.Redis, s: Settings) -> dict[str, float]:
    """The worker's cumulative seconds busy / awaiting reads, applies, acks / idle (its metrics)."""
    m = r.hgetall(keys.namespaced(s.namespace, keys.worker_metrics(s.worker_instance)))
    names = ("busy_s", "wait_read_s", "wait_apply_s", "wait_emit_s", "idle_s")
    return {n: float(m.get(n.encode(), 0.0)) for n in names}


def growth(samples: list[Sample], attr: str, minutes: float) -> float:
    """RSS growth from minute 1 to the end, as a fraction of the minute-1 value."""
    first = [getattr(x, attr) for x in samples if 60.0 <= x.t_s < 90.0] or [getattr(samples[0], attr)]
    last = [getattr(x, attr) for x in samples[-3:]]
    return float(np.mean(last) / np.mean(first) - 1.0)


def run_soak(s: Settings, minutes: float, rate: float, rps: float, sample_s: float,
             png: Path | None, users: int = 2000, items: int = 5000, retention_s: int = 60) -> dict[str, object]:
    """``retention_s`` (0: the broker's default) bounds what the private broker keeps: the embedded one
    rewrites its whole state file every ~1.5 s, so its CPU grows with everything stored, and over a
    soak that growth takes the CPU the worker and Redis need (docs/streams.md, "The soak's broker")."""
    with private_infra(s) as (ps, env):
        root = Path(env["STREAMREC_STATE_DIR"]).parent
        if retention_s:
            ps = ps.model_copy(update={"topic_retention_ms": retention_s * 1000,
                                       "topic_segment_ms": max(1, retention_s // 6) * 1000})
            env.update({"STREAMREC_TOPIC_RETENTION_MS": str(ps.topic_retention_ms),
                        "STREAMREC_TOPIC_SEGMENT_MS": str(ps.topic_segment_ms)})
        # here, not only in the worker child: the API (started right after it) could create the impressions
        # topic first, by producing to it, without the configs
        asyncio.run(ensure_topics(ps))
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

            cpu0, wall0, m0 = _cpu(worker, api, root, r), time.monotonic(), worker_times(r, ps)
            asyncio.run(main())
            cpu1, wall, m1 = _cpu(worker, api, root, r), time.monotonic() - wall0, worker_times(r, ps)
            cores = {k: round((cpu1[k] - cpu0[k]) / wall, 3) for k in cpu0}
            fallbacks = fallback_reasons(f"http://127.0.0.1:{port}/metrics")
            aof_rewrites = int(r.info("persistence").get("aof_rewrites", 0))
            redis_mb = int(r.info("memory")["used_memory"]) / 2**20  # open impressions hold most of it
            lag_at_end = run.published + run.metas - applied_published(r, ps.namespace)
            # let the worker read everything the broker still holds (bounded), then say where each record went
            t_end = time.monotonic()
            ends = ledger_ends(run.sent)
            while time.monotonic() - t_end < 300 and not consumed(r, ps.namespace, ends):
                time.sleep(1.0)
            drain_s = time.monotonic() - t_end
            drained = consumed(r, ps.namespace, ends)
            st = {k.decode(): int(v) for k, v in r.hgetall(keys.namespaced(ps.namespace, keys.STATS)).items()}
            starts = asyncio.run(log_starts(ps, sorted(ends)))
            marks = marked_ids(r, ps.namespace, marks_to_check(run.sent, ps.topic_events))
            ledger = reconcile(run.sent, ps.topic_events, marks, starts)
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
        "degraded_answers": run.degraded,
        "fallbacks_by_reason": fallbacks,
        "cpu_cores_during_load": cores,
        # fraction of the load's wall time the worker spent in each (from its metrics, 10 s apart)
        "worker_time_shares": {k: round((m1[k] - m0.get(k, 0.0)) / wall, 3) for k in m1},
        "redis_aof_rewrites": aof_rewrites,
        "redis_used_memory_mb_at_end": round(redis_mb, 1),
        "topic_retention_s": retention_s or None,
        "lag_events_at_end": lag_at_end,
        "drain_s": round(drain_s, 1),
        "drained": drained,  # the worker read every events-topic record the broker still held
        # every record the soak published, sorted by what became of it (bench.soak_ledger)
        "ledger": ledger.as_json(),
        "send_failed_records": run.send_failed,
        "unaccounted_after_drain": ledger.events_unaccounted + ledger.hostile_unaccounted,
        "lost_to_retention_records": ledger.records_deleted,
        "lost_to_retention_events": ledger.events_deleted,
        # Kafka records (batch records of events) the worker found deleted before it applied them
        "worker_lost_to_retention_records": st.get("lost_to_retention", 0),
        "worker_impressions_lost_to_retention_records": st.get("impressions_lost_to_retention", 0),
        "p99_ms": float(np.percentile(run.latencies, 99)) if run.latencies else None,
        "worker_rss_growth": growth(run.samples, "worker_rss_mb", minutes),
        "api_rss_growth": growth(run.samples, "api_rss_mb", minutes),
        "hostile_injected": run.hostile,
        "hostile_dead_lettered": ledger.hostile_dead_lettered,
        "hostile_lost_to_retention": ledger.hostile_deleted,
        "dead_letters": st.get("dead_letters", 0),
        "samples": [x.__dict__ for x in run.samples],
    }
    result["checks"] = soak_checks(result)
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
    ax[2].legend(loc="upper left")
    queued = ax[2].twinx()
    queued.plot(t, [x.queued_events / 1000 for x in samples], color="tab:gray", linestyle=":", label="queued events (k)")
    queued.legend(loc="lower right")
    ax[2].set_xlabel("minutes")
    fig.suptitle("streamrec soak")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    plt.close(fig)
