"""Turn one consumed batch of raw records into guarded writes and dead letters (pure).

This is the whole per-batch logic of the worker, shared by the Faust agent, the
replay command and tests, so that live processing and rebuilds cannot diverge:

    dec = decode_records(records, now, topic)
    reads = context_reads(dec, cfg, meta)            # one round trip (streams.pipeline;
    ctx = build_context(dec, reads, results, meta)   #   both in streams.batch_context)
    plan = plan_decoded(dec, cfg, ctx, merge=True)   # every event's writes, merged
    (+ the label closes of ``plan.due``, streams.label_flow)

Per valid event the guarded writes are: core state (streams.online_state), the
70 online features (streams.features), the label buffers (streams.label_flow)
and, for events not applied before, the incremental embeddings
(streams.vector_plan).  Without a context (``plan_batch(records, now, topic)``)
the plan is what an empty store would need.

With ``merge=True`` the rules emit straight into one ``streams.merge.Merger`` for
the whole batch (``plan.batch``, what the worker applies); without, every event
keeps its own write list (``plan.guarded``) and ``plan.merged()`` merges them
with ``merge_writes``: the same writes, the reference the tests compare with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence, Union

from schemas.codec import Rejection, decode_record
from schemas.events import Event, Impression
from streams import keys
from streams.features.categories import batch_contexts
from streams.features.config import FeatureConfig, WriteContext
from streams.features.interactions import INTERACTIONS
from streams.features.registry import emit_all
from streams.label_flow import (LabelFlowConfig, due, event_emit, impression_watermark, oldest_open_ts, trim_bound,
                                trim_writes, watermark, watermark_writes)
from streams.online_state import StateConfig, state_emit
from streams.merge import Merger, merge_writes
from streams.batch_context import BatchContext
from streams.store import Group, Guarded, GuardedBatch
from streams.vector_plan import VectorConfig, VectorPlanner
from streams.writes import Write, WriteList, WriteSink, hincrby, hmax


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed Kafka record: coordinates plus the original bytes."""

    partition: int
    offset: int
    value: bytes
    topic: str = ""  # "" = the events topic
    index: int = -1  # position inside a batch record (schemas.codec.decode_record); -1 = a plain record

    @property
    def source(self) -> str:
        """Coordinates for dead letters: ``topic/partition/offset[#index]``."""
        return f"{self.topic}/{self.partition}/{self.offset}" + (f"#{self.index}" if self.index >= 0 else "")


@dataclass(frozen=True)
class PlanConfig:
    state: StateConfig = StateConfig()
    features: FeatureConfig = FeatureConfig()
    labels: LabelFlowConfig = LabelFlowConfig()
    vectors: VectorConfig = VectorConfig()


@dataclass(frozen=True)
class Decoded:
    items: tuple[tuple[Record, Union[Event, Rejection]], ...]
    watermark: dict[int, int]  # events-topic partition -> next offset
    topic: str = ""  # the events topic (records with topic "" belong to it)
    imp_watermark: dict[int, int] = field(default_factory=dict)  # impressions-topic partition -> next offset

    @property
    def events(self) -> list[Event]:
        return [x for _, x in self.items if not isinstance(x, Rejection)]


@dataclass(frozen=True)
class BatchPlan:
    guarded: tuple[Guarded, ...]  # one group per record, in order (duplicates: no writes)
    rejected: tuple[tuple[Record, Rejection], ...]
    watermark: dict[int, int] = field(default_factory=dict)
    events: tuple[Event, ...] = ()  # valid events not applied before, in order
    due: tuple[str, ...] = ()  # impressions (label_flow.open_member) whose window closes now
    duplicates: int = 0  # valid events already applied (marked, or earlier in this batch)
    kinds: str = ""  # per group of ``guarded``: e = new event, d = duplicate, x = dead letter
    # planned with merge=True: the merged groups (``guarded`` then holds only the dead-letter
    # groups; ``kinds`` still has one letter per record)
    batch: tuple[Group, ...] | None = None

    def merged(self) -> tuple[Group, ...]:
        """The same writes as ``guarded`` in fewer commands: every new event's writes merged
        (streams.merge) under one all-or-nothing GuardedBatch, then the dead-letter groups."""
        if self.batch is not None:
            return self.batch
        ids: list[str] = []
        writes: list[Write] = []
        rest: list[Guarded] = []
        for g, kind in zip(self.guarded, self.kinds, strict=True):
            if kind == "e":
                assert g.dedupe_id is not None
                ids.append(g.dedupe_id)
                writes.extend(g.writes)
            elif kind == "x":
                rest.append(g)
        if self.duplicates:
            writes.append(hincrby(keys.STATS, "duplicates", self.duplicates))
        if not ids and not writes:
            return tuple(rest)
        return (GuardedBatch(tuple(ids), tuple(merge_writes(writes))), *rest)


def dead_letter_guard(topic: str, rec: Record) -> Guarded:
    """Counts a dead letter once, however often the record is re-delivered."""
    at = f"{rec.topic or topic}:{rec.partition}:{rec.offset}" + (f":{rec.index}" if rec.index >= 0 else "")
    return Guarded(f"dlq:{at}", (hincrby(keys.STATS, "dead_letters"),))


def offset_marks(imp_watermark: dict[int, int]) -> tuple[Guarded, ...]:
    """The impressions topic's offsets watermark as writes, unguarded (a re-delivered or dead-lettered
    record raises it too), applied with the part that holds those records (streams.retention_watch)."""
    if not imp_watermark:
        return ()
    return (Guarded(None, tuple(hmax(keys.IMPRESSIONS_WATERMARK, str(p), off)
                                for p, off in sorted(imp_watermark.items()))),)


def _raise(wm: dict[int, int], partition: int, offset: int) -> None:
    if wm.get(partition, -1) < offset + 1:
        wm[partition] = offset + 1


def decode_records(records: Sequence[Record], now: datetime, topic: str = "") -> Decoded:
    items: list[tuple[Record, Union[Event, Rejection]]] = []
    wm: dict[int, int] = {}
    imp: dict[int, int] = {}
    for rec in records:
        _raise(wm if rec.topic in ("", topic) else imp, rec.partition, rec.offset)
        xs = decode_record(rec.value, now)
        if len(xs) == 1 and rec.value[:1] != b"[":
            items.append((rec, xs[0]))
        else:
            items.extend((Record(rec.partition, rec.offset, rec.value, rec.topic, k), x) for k, x in enumerate(xs))
    return Decoded(tuple(items), wm, topic, imp)


def split_events(dec: Decoded, max_events: int) -> list[Decoded]:
    """Consecutive parts of at most ``max_events`` items, cutting batch records where needed
    (bounded work per atomic apply, however many events one record holds).  A part's offsets
    watermark names only the records whose *last* item it holds, so a reader seeing offset N
    still knows every event of every record before N is applied."""
    if max_events < 1:
        raise ValueError("max_events must be at least 1")
    items = dec.items
    last: dict[tuple[str, int, int], int] = {}  # record -> index of its last item
    for n, (rec, _) in enumerate(items):
        last[(rec.topic, rec.partition, rec.offset)] = n
    parts: list[Decoded] = []
    for start in range(0, len(items), max_events):
        chunk = items[start:start + max_events]
        wm: dict[int, int] = {}
        imp: dict[int, int] = {}
        for n, (rec, _) in enumerate(chunk, start):
            if last[(rec.topic, rec.partition, rec.offset)] == n:
                _raise(wm if rec.topic in ("", dec.topic) else imp, rec.partition, rec.offset)
        parts.append(Decoded(chunk, wm, dec.topic, imp))
    return parts


def plan_decoded(dec: Decoded, cfg: PlanConfig = PlanConfig(), ctx: BatchContext = BatchContext(),
                 merge: bool = False) -> BatchPlan:
    events = dec.events
    cats = iter(batch_contexts(events, ctx.category_reads, ctx.category_results))
    planner = (VectorPlanner(ctx.meta, dict(ctx.item_vectors), dict(ctx.user_accs), cfg.features, cfg.vectors)
               if ctx.meta is not None and cfg.vectors.enabled else None)
    merger = Merger() if merge else None
    guarded: list[Guarded] = []
    rejected: list[tuple[Record, Rejection]] = []
    new: list[Event] = []
    seen: set[str] = set(ctx.applied)
    max_ts: dict[int, float] = {}  # events-topic partition -> max event time of new events
    imp_max: dict[int, float] = {}  # impressions-topic partition -> max event time of new impressions
    last_new = -1
    dups = 0
    kinds: list[str] = []
    lcfg = cfg.labels
    for rec, x in dec.items:
        if isinstance(x, Rejection):
            rejected.append((rec, x))
            guarded.append(dead_letter_guard(dec.topic, rec))
            kinds.append("x")
            continue
        cat = next(cats)
        if x.event_id in seen:  # the store skips (and counts) it: no need to plan its writes
            if merger is None:
                guarded.append(Guarded(x.event_id, ()))
            kinds.append("d")
            dups += 1
            continue
        ts = x.ts.timestamp()
        if merger is not None:
            _emit_event(x, ts, cfg, cat, planner, merger)
        else:
            own = WriteList()
            _emit_event(x, ts, cfg, cat, planner, own)
            last_new = len(guarded)
            guarded.append(Guarded(x.event_id, tuple(own.writes)))
        seen.add(x.event_id)
        new.append(x)
        kinds.append("e")
        if rec.topic in ("", dec.topic):
            if ts > max_ts.get(rec.partition, -math.inf):
                max_ts[rec.partition] = ts
        elif isinstance(x, Impression) and ts > imp_max.get(rec.partition, -math.inf):
            imp_max[rec.partition] = ts
    stored_wm = dict(ctx.label_wm)
    wm = watermark(stored_wm, max_ts, lcfg)
    if max_ts or imp_max:
        # the labels' watermarks and buffer trims ride with the last new event (atomic with it)
        extra = watermark_writes(max_ts, imp_max)
        users = [e.user_id for e in new if isinstance(e, INTERACTIONS)]
        if wm is not None and users:
            oldest = oldest_open_ts(ctx.open_impressions,
                                    (e.ts.timestamp() for e in new if isinstance(e, Impression)), lcfg)
            extra += trim_writes(users, trim_bound(wm, impression_watermark(stored_wm, imp_max, lcfg), oldest, lcfg))
        if merger is not None:
            merger.extend(extra)  # no new event's writes come after the last one's
        else:
            g = guarded[last_new]
            guarded[last_new] = Guarded(g.dedupe_id, g.writes + tuple(extra))
    due_: list[str] = []
    if wm is not None:
        due_ = due(ctx.open_impressions, [e for e in new if isinstance(e, Impression)], wm, lcfg)
    batch: tuple[Group, ...] | None = None
    if merger is not None:
        if dups:
            merger.hincrby(keys.STATS, "duplicates", dups)
        rest = tuple(guarded)  # the dead letters
        batch = ((GuardedBatch(tuple(e.event_id for e in new), tuple(merger.result())), *rest)
                 if new or len(merger) else rest)
    return BatchPlan(tuple(guarded), tuple(rejected), dec.watermark, tuple(new), tuple(due_), dups, "".join(kinds),
                     batch)


def _emit_event(x: Event, ts: float, cfg: PlanConfig, cat: WriteContext, planner: VectorPlanner | None,
                out: WriteSink) -> None:
    """One new event's writes, in the order the plan has always had them."""
    state_emit(x, ts, cfg.state, out)
    emit_all(x, ts, cfg.features, cat, out)
    event_emit(x, ts, cfg.labels, out)
    if planner is not None:
        planner.emit(x, ts, out)


def plan_batch(records: Sequence[Record], now: datetime, topic: str, cfg: PlanConfig = PlanConfig(),
               ctx: BatchContext = BatchContext()) -> BatchPlan:
    """Decode and plan in one step (no label closes; see streams.pipeline for the full path)."""
    return plan_decoded(decode_records(records, now, topic), cfg, ctx)
