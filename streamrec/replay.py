"""``streamrec replay``: rebuild online state from the retained topics, and swap it live.

Reads the events and impressions topics with a plain aiokafka consumer (no
group, nothing committed) and runs the worker's own ``BatchProcessor`` (same
plan, same Lua apply) into a namespace.  Partitions are merged by record
timestamp, the order closest to what the live worker saw (item metadata
published before interactions is applied before them, as it was live).  Dead letters and training rows are
not re-emitted (they were emitted by the live worker); their counters are
rebuilt.  The positions reached are kept in ``replay:pos`` (excluded from the
digest) so that ``--swap`` can catch the namespace up before and after it
moves the live pointer.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Mapping

import redis.asyncio as aioredis
import redis.exceptions as rexc
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from tqdm import tqdm

from streams import keys
from streams.batch import Record
from streams.processor import BatchProcessor
from streams.store import Guarded
from streams.store_redis import RedisStore
from streams.worker import plan_config
from streams.writes import hset
from streamrec import fetch_backoff
from streamrec.errors import ServiceUnavailable, UserError
from streamrec.settings import Settings

POSITIONS = "replay:pos"
Positions = dict[tuple[str, int], int]


@dataclass(frozen=True)
class ReplayResult:
    namespace: str
    records: int
    applied: int
    seconds: float
    positions: Positions
    # records the replay should have started from but the topics' retention had deleted (offsets
    # below a partition's log start: from earliest, all of them; from saved positions, those past
    # the positions); the rebuilt state lacks them.  A time start cannot tell, so 0.
    not_retained: int = 0
    # from a time: (topic, partition, log start) of each partition whose earliest retained record is
    # already at or after that time while earlier ones were deleted, so some of the deleted ones may
    # have been after it too (how many, the broker no longer knows)
    maybe_not_retained: tuple[tuple[str, int, int], ...] = ()


def parse_when(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise UserError(f"expected 'earliest' or an ISO 8601 time like 2024-03-01T12:00:00Z, got {text!r}") from err
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def check_namespace(ns: str) -> str:
    if not ns or ":" in ns or ns.startswith("streamrec") or any(c.isspace() for c in ns):
        raise UserError(f"bad namespace {ns!r}: use letters, digits, '-' or '_' (no ':' and not 'streamrec...')")
    return ns


async def _partitions(c: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    cluster = await c._client.fetch_all_metadata()  # no group: ask the cluster directly
    out: list[TopicPartition] = []
    for t in topics:
        for p in sorted(cluster.partitions_for_topic(t) or ()):
            out.append(TopicPartition(t, p))
    return out


async def replay(s: Settings, namespace: str, start: datetime | Positions | None = None,
                 until: datetime | None = None, progress: bool = True) -> ReplayResult:
    """Apply the retained records from ``start`` (None = earliest; a time; or saved positions)
    up to the topics' ends as of now (and ``until`` by record timestamp) into ``namespace``."""
    check_namespace(namespace)
    t0 = time.monotonic()
    fetch_backoff.install(s.kafka_empty_fetch_backoff_ms)
    c = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024)
    client = aioredis.Redis.from_url(s.redis_url, socket_timeout=30, socket_connect_timeout=5)
    try:
        try:
            await asyncio.wait_for(c.start(), 15)
            tps = await _partitions(c, [s.topic_events, s.topic_impressions])
        except (KafkaError, asyncio.TimeoutError, OSError) as err:
            raise ServiceUnavailable(f"cannot reach Kafka at {s.kafka_bootstrap}: start it with `streamrec dev up` "
                                     "or set STREAMREC_KAFKA_BOOTSTRAP") from err
        if not tps:
            raise UserError(f"topic {s.topic_events} does not exist: nothing to replay")
        c.assign(tps)
        ends = await c.end_offsets(tps)
        begins = await c.beginning_offsets(tps)
        starts = await _starts(c, tps, begins, ends, start)
        not_retained = _not_retained(tps, begins, start)
        maybe = _maybe_not_retained(tps, begins, starts, ends) if isinstance(start, datetime) else ()
        for tp in tps:
            c.seek(tp, starts[tp])
        store = RedisStore(client, namespace, s.dedupe_ttl_s, follow_live=False)
        proc = BatchProcessor(store, _discard, lambda: datetime.now(timezone.utc), s.topic_events, plan_config(s),
                              max_events=s.replay_batch)
        todo = {tp for tp in tps if starts[tp] < ends[tp]}
        pos: Positions = {(tp.topic, tp.partition): starts[tp] for tp in tps}
        total = sum(max(0, ends[tp] - starts[tp]) for tp in tps)
        until_ms = int(until.timestamp() * 1000) if until else None
        n = 0
        buffers: dict[TopicPartition, deque[Any]] = {tp: deque() for tp in tps}
        with tqdm(total=total, desc=f"replay -> {namespace}", unit="ev", disable=not progress,
                  mininterval=0.5) as bar:
            while todo or any(buffers.values()):
                need = [tp for tp in todo if not buffers[tp]]
                if need:
                    got = await c.getmany(*need, timeout_ms=500, max_records=s.replay_batch)
                    for tp, msgs in got.items():
                        for m in msgs:
                            if m.offset >= ends[tp] or (until_ms is not None and m.timestamp > until_ms):
                                todo.discard(tp)
                                break
                            buffers[tp].append(m)
                            if m.offset + 1 >= ends[tp]:
                                todo.discard(tp)
                records = _merge(buffers, todo, s.replay_batch, s.topic_events, pos)
                if records:
                    await proc.process(records)
                    n += len(records)
                    bar.update(len(records))
        await store.apply([Guarded(None, tuple(hset(POSITIONS, f"{t}\x1f{p}", str(o)) for (t, p), o in pos.items()))])
        return ReplayResult(namespace, n, proc.counters.applied, time.monotonic() - t0, pos, not_retained, maybe)
    except (rexc.ConnectionError, rexc.TimeoutError) as err:
        raise ServiceUnavailable(f"cannot reach Redis at {s.redis_url}: start it with `streamrec dev up` "
                                 f"or set STREAMREC_REDIS_URL ({err})") from err
    finally:
        await c.stop()
        await client.aclose()


def _merge(buffers: dict[TopicPartition, deque[Any]], todo: set[TopicPartition], limit: int,
           events_topic: str, pos: Positions) -> list[Record]:
    """Records of all partitions merged by record timestamp (then topic, partition), the order
    closest to what the live worker saw; stops when a partition still being read runs dry."""
    out: list[Record] = []
    while len(out) < limit:
        if any(not buffers[tp] for tp in todo):
            break
        cands = [tp for tp, q in buffers.items() if q]
        if not cands:
            break
        tp = min(cands, key=lambda t: (buffers[t][0].timestamp, t.topic, t.partition))
        m = buffers[tp].popleft()
        out.append(Record(m.partition, m.offset, m.value or b"", "" if tp.topic == events_topic else tp.topic))
        pos[(tp.topic, tp.partition)] = m.offset + 1
    return out


async def _starts(c: AIOKafkaConsumer, tps: list[TopicPartition], begins: Mapping[TopicPartition, int],
                  ends: Mapping[TopicPartition, int], start: datetime | Positions | None) -> dict[TopicPartition, int]:
    if start is None:
        return {tp: begins[tp] for tp in tps}
    if isinstance(start, dict):
        return {tp: max(begins[tp], start.get((tp.topic, tp.partition), begins[tp])) for tp in tps}
    found = await c.offsets_for_times({tp: int(start.timestamp() * 1000) for tp in tps})
    return {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in tps}


def _not_retained(tps: list[TopicPartition], begins: Mapping[TopicPartition, int],
                  start: datetime | Positions | None) -> int:
    if start is None:
        return sum(begins[tp] for tp in tps)
    if isinstance(start, dict):
        return sum(max(0, begins[tp] - start[(tp.topic, tp.partition)]) for tp in tps
                   if (tp.topic, tp.partition) in start)
    return 0


def _maybe_not_retained(tps: list[TopicPartition], begins: Mapping[TopicPartition, int],
                        starts: Mapping[TopicPartition, int],
                        ends: Mapping[TopicPartition, int]) -> tuple[tuple[str, int, int], ...]:
    """From a time: the partitions that start at their log start although records before it were
    deleted (the first retained record is already at or after the time).  A partition whose start
    lies past its log start has a retained record before the time, and retention deletes the oldest
    first, so nothing it deleted was after the time."""
    return tuple((tp.topic, tp.partition, begins[tp]) for tp in tps
                 if begins[tp] > 0 and starts[tp] == begins[tp] < ends[tp])


async def _discard(value: bytes, key: bytes | None) -> None:
    return None


async def saved_positions(s: Settings, namespace: str) -> Positions:
    client = aioredis.Redis.from_url(s.redis_url, socket_connect_timeout=5, decode_responses=True)
    try:
        raw = await client.hgetall(keys.namespaced(namespace, POSITIONS))
    finally:
        await client.aclose()
    out: Positions = {}
    for f, v in raw.items():
        t, _, p = f.rpartition("\x1f")
        out[(t, int(p))] = int(v)
    return out


async def swap(s: Settings, namespace: str, progress: bool = True) -> tuple[str | None, ReplayResult]:
    """Catch ``namespace`` up, point ``streamrec:live`` at it (one SET), catch up again.

    The worker's Lua script reads the pointer inside each atomic apply, so every
    batch lands wholly in the old or wholly in the new namespace; the second
    catch-up applies what the worker put into the old one in between (dedupe
    makes any overlap a no-op).  Returns (previous live namespace, last catch-up).
    """
    check_namespace(namespace)
    pos = await saved_positions(s, namespace)
    if not pos:
        raise UserError(f"namespace {namespace!r} was not built by replay: run "
                        f"`streamrec replay --from earliest --into {namespace}` first")
    first = await replay(s, namespace, pos, progress=progress)
    client = aioredis.Redis.from_url(s.redis_url, socket_connect_timeout=5)
    try:
        prev = await client.set(keys.LIVE_POINTER, namespace, get=True)
    finally:
        await client.aclose()
    last = await replay(s, namespace, await saved_positions(s, namespace), progress=progress)
    old = prev.decode() if isinstance(prev, bytes) else prev
    return old, replace(last, not_retained=first.not_retained + last.not_retained)
