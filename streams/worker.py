"""The Faust worker: events + impressions topics -> validate + dedupe -> online state in Redis.

Every batch runs streams.pipeline (features, labels, embeddings) and is applied
in one Lua call; closed impression windows go to the training topic; the river
dwell sketch is reported every 10 s in the log and in ``metrics:{worker}``, and the
heap's free pages are given back to the OS at the same time (``streamrec.heap``).

Batches come from ``take_events``, which acknowledges offsets only after the
batch has been handed back, i.e. after ``BatchProcessor.process`` has applied
it to Redis in one atomic Lua call.  At-least-once delivery plus idempotent
application gives effectively-once state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone

import faust
import redis.asyncio as aioredis
from aiokafka import TopicPartition

from streams import keys
from streams.batch import PlanConfig, Record
from streams.features.config import FeatureConfig
from streams.label_flow import LabelFlowConfig
from streams.labels import LabelConfig
from streams.online_state import StateConfig
from streams.processor import BatchProcessor
from streams.retention_watch import RetentionWatch, worker_topics
from streams.store import Guarded
from streams.store_redis import RedisStore
from streams.vector_plan import VectorConfig
from streams.writes import hset
from streamrec import fetch_backoff, heap
from streamrec.kafka import compression
from streamrec.settings import Settings

log = logging.getLogger("streamrec.worker")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def restore_root_level(loglevel: str) -> None:
    """Put the root logger back at the worker's ``--loglevel`` once Faust has started.

    Faust's worker sets the root logger to DEBUG for its start-up spinner
    (``faust.Worker._setup_spinner_handler``) and never lowers it again, so every debug
    call in faust and aiokafka (one per record sent, among others) builds a log record
    that the handlers then drop: 8 % of the worker's time while it emits training rows."""
    from mode.utils.logging import level_number

    logging.root.setLevel(level_number(loglevel))


def plan_config(s: Settings) -> PlanConfig:
    """The one place settings become the pure plan's configuration (worker and replay)."""
    return PlanConfig(
        state=StateConfig(trending_half_life_s=s.trending_half_life_s),
        features=FeatureConfig(),
        labels=LabelFlowConfig(LabelConfig(window_s=s.label_window_s), s.label_lateness_s,
                               s.label_buffer_s, s.label_close_max, s.topic_partitions, s.label_buffer_max_s),
        vectors=VectorConfig(half_life_s=s.vector_half_life_s),
    )


def metrics_writes(p: BatchProcessor, worker: str, lost: dict[str, int] | None = None) -> Guarded:
    """Process-local metrics (not part of the state digest); ``lost``: records this process counted as
    deleted by retention, per ``stats`` field (streams.retention_watch)."""
    c, d = p.counters, p.dwell.get()
    fields = {"records": c.records, "applied": c.applied, "duplicates": c.duplicates,
              "dead_letters": c.dead_letters, "training_rows": c.training_rows, "batches": c.batches,
              "lost_to_retention": 0, "impressions_lost_to_retention": 0, **(lost or {}),
              "dwell_n": d.n, "dwell_mean_ms": d.mean_ms, "dwell_std_ms": d.std_ms,
              # seconds: processing batches, and within that awaiting reads / applies / the broker's
              # acks of emitted rows; idle = awaiting the next batch from the consumer
              "busy_s": c.busy_s, "wait_read_s": p.planner.read_s if p.planner else 0.0,
              "wait_apply_s": c.wait_apply_s, "wait_emit_s": c.wait_emit_s, "idle_s": c.idle_s}
    fields.update({f"dwell_p{int(q * 100)}_ms": v for q, v in d.quantiles})
    key = keys.worker_metrics(worker)
    return Guarded(None, tuple(hset(key, k, repr(v) if isinstance(v, float) else str(v)) for k, v in fields.items()))


def build_app(s: Settings, loglevel: str = "warn") -> faust.App:
    fetch_backoff.install(s.kafka_empty_fetch_backoff_ms)
    (s.state_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        s.worker_id,
        broker=f"kafka://{s.kafka_bootstrap.replace(',', ';kafka://')}",
        store="memory://",
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        topic_partitions=s.topic_partitions,
        consumer_auto_offset_reset="earliest",
        # bounded prefetch: the consumer stops fetching a partition while its buffer is full
        stream_buffer_maxsize=s.worker_prefetch_records,
        # records decoded per poll: the rest of a fetch stays in its raw form until needed (a broker that
        # ignores the fetch size limits, like noida-db, can answer one fetch with a partition's whole backlog)
        broker_max_poll_records=s.worker_prefetch_records,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        producer_acks=-1,
        producer_compression_type=compression(s),
        # a SIGKILLed member is evicted after this, and its partitions move on
        broker_session_timeout=s.worker_session_timeout_s,
        broker_heartbeat_interval=max(1.0, s.worker_session_timeout_s / 5),
        broker_rebalance_timeout=s.worker_session_timeout_s,
        # static membership (KIP-345): a restarted worker takes its old place at once
        # instead of waiting for the dead member to be evicted
        consumer_group_instance_id=s.worker_instance,
        datadir=str(s.state_dir / "faust"),
    )
    events = app.topic(s.topic_events, s.topic_impressions, value_serializer="raw", key_serializer="raw",
                       partitions=s.topic_partitions)
    dlq = app.topic(s.topic_dlq, value_serializer="raw", key_serializer="raw", partitions=s.topic_partitions)
    training = app.topic(s.topic_training, value_serializer="raw", key_serializer="raw",
                         partitions=s.topic_partitions)
    state: dict[str, BatchProcessor] = {}
    watch: dict[str, RetentionWatch] = {}
    # batches taken, whether one is in progress, and the count at the last sweep (idle = unchanged)
    activity = {"batches": 0, "busy": 0, "swept": -1}

    async def log_start(topic: str, partition: int) -> int:
        tp = TopicPartition(topic, partition)
        return int((await app.consumer.earliest_offsets(tp))[tp])

    async def send_dead_letter(value: bytes, key: bytes | None) -> None:
        fut = await dlq.send(key=key, value=value)
        await fut  # delivered before the batch's offsets can be acknowledged

    async def send_training_row(value: bytes, key: bytes | None) -> None:
        await (await training.send(key=key, value=value))

    async def processor() -> BatchProcessor:
        if "p" not in state:
            restore_root_level(loglevel)  # the worker's logging is set up by now
            client = aioredis.Redis.from_url(s.redis_url, socket_timeout=10, socket_connect_timeout=5)
            store = RedisStore(client, s.namespace, s.dedupe_ttl_s, follow_live=True)
            state["p"] = BatchProcessor(
                store, send_dead_letter, utcnow, s.topic_events, plan_config(s),
                training_sink=send_training_row, max_events=s.worker_apply_events, overlap=s.worker_overlap,
            )
            watch["w"] = RetentionWatch(store, log_start, worker_topics(s.topic_events, s.topic_impressions))
            heap.tune_gc(s.worker_gc_young)  # once the app runs: what is alive now stays
        return state["p"]

    @app.agent(events, name="ingest")
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        proc = await processor()
        t_idle = time.perf_counter()
        async for batch in stream.take_events(s.worker_batch, within=s.worker_batch_ms / 1000):
            proc.counters.idle_s += time.perf_counter() - t_idle
            activity["batches"] += 1
            activity["busy"] = 1
            try:
                records = [Record(e.message.partition, e.message.offset, e.value or b"",
                                  "" if e.message.topic == s.topic_events else e.message.topic) for e in batch]
                await retention_check(records)
                await proc.process(records)
            finally:
                activity["busy"] = 0
            t_idle = time.perf_counter()

    async def retention_check(records: list[Record]) -> None:
        try:
            await watch["w"].check(records)
        except Exception as err:  # the check only reports; it never holds the stream back
            log.warning("retention check failed: %s", err)

    async def retention_sweep() -> None:
        """Tail gaps (records deleted after the last one consumed, and nothing newer yet)."""
        idle = not activity["busy"] and activity["batches"] == activity["swept"]
        activity["swept"] = activity["batches"]
        tags = {s.topic_events: "", s.topic_impressions: s.topic_impressions}
        try:
            assigned = [(tags[tp.topic], tp.partition, await asyncio.wait_for(app.consumer.position(tp), 5.0))
                        for tp in sorted(app.consumer.assignment()) if tp.topic in tags]
            await watch["w"].sweep(assigned, idle)
        except Exception as err:  # reports only, like the check
            log.warning("retention sweep failed: %s", err)

    @app.timer(interval=10.0)
    async def report() -> None:
        if "p" in state:
            p = state["p"]
            c, d = p.counters, p.dwell.get()
            log.info(
                "processed records=%d applied=%d duplicates=%d dead_letters=%d batches=%d training_rows=%d "
                "dwell n=%d mean=%.0fms quantiles=%s busy=%.1fs read=%.1fs apply=%.1fs emit=%.1fs idle=%.1fs",
                c.records, c.applied, c.duplicates, c.dead_letters, c.batches, c.training_rows,
                d.n, d.mean_ms, {q: round(v) for q, v in d.quantiles if v == v},
                c.busy_s, p.planner.read_s if p.planner else 0.0, c.wait_apply_s, c.wait_emit_s, c.idle_s,
            )
            await retention_sweep()
            try:
                await p.store.apply([metrics_writes(p, s.worker_instance, watch["w"].lost)])
            except Exception as err:  # metrics are best effort
                log.warning("metrics write failed: %s", err)
        heap.trim()  # what a backlog's large batches freed goes back to the OS (streamrec.heap)

    return app


def run_worker(s: Settings, loglevel: str = "warn") -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT."""
    import sys

    app = build_app(s, loglevel)
    sys.argv = ["streamrec-worker", "worker", "-l", loglevel, "--without-web"]
    app.main()
