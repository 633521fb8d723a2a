"""The full per-batch plan against a store: context read, plan, label closes.

Shared by the worker (streams.processor), ``streamrec replay`` and the tests'
in-memory reference, so that all three run the same code.  Round trips per
batch: one read (categories, dedupe marks, vector meta + vectors, label
watermark + oldest open impressions); a second read only when the item-factor
version changed or impression windows close in this batch; then the caller's
single atomic ``apply``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence

from schemas.codec import Rejection
from schemas.events import Event
from streams.batch import (BatchPlan, Decoded, PlanConfig, Record, build_context, context_reads, decode_records,
                           meta_of, plan_decoded)
from streams.embeddings import VectorMeta
from streams.label_flow import close, close_reads
from streams.labels import TrainingRow
from streams.store import Group, Guarded, Store
from streams.vector_plan import vector_reads


@dataclass
class MetaCache:
    """The item-factor model version last seen (so vectors are read in the first round trip)."""

    meta: VectorMeta | None = None


@dataclass(frozen=True)
class FullPlan:
    guarded: tuple[Group, ...]
    rejected: tuple[tuple[Record, Rejection], ...]
    watermark: dict[int, int]
    events: tuple[Event, ...]  # new (not previously applied) events
    rows: tuple[TrainingRow, ...] = ()
    round_trips: int = 1
    closes: int = 0
    duplicates: int = 0  # valid events skipped by the plan as already applied


@dataclass
class Planner:
    cfg: PlanConfig = field(default_factory=PlanConfig)
    topic: str = ""
    cache: MetaCache = field(default_factory=MetaCache)
    merge: bool = True  # one merged GuardedBatch for the batch's events (False: one group per event)

    async def plan(self, store: Store, records: Sequence[Record], now: datetime) -> FullPlan:
        return await self.plan_decoded(store, decode_records(records, now, self.topic))

    async def plan_decoded(self, store: Store, dec: Decoded) -> FullPlan:
        meta = self.cache.meta
        reads = context_reads(dec, self.cfg, meta)
        results = list(await store.read(reads))
        trips = 1
        seen_meta = meta_of(reads, results)
        if seen_meta != meta:  # a new item-factor model was published: fetch its vectors
            self.cache.meta = meta = seen_meta
            extra = vector_reads(dec.events, meta) if self.cfg.vectors.enabled else []
            if extra:
                results += await store.read(extra)
                reads = reads + extra
                trips += 1
        ctx = build_context(dec, reads, results, meta)
        plan: BatchPlan = plan_decoded(dec, self.cfg, ctx)
        closes: list[Guarded] = []
        rows: list[TrainingRow] = []
        if plan.due:
            creads = close_reads(plan.due)
            cres = await store.read(creads)
            trips += 1
            closes, rows = close(plan.due, creads, cres, plan.events, self.cfg.labels)
        groups: tuple[Group, ...] = plan.merged() if self.merge else plan.guarded
        return FullPlan(groups + tuple(closes), plan.rejected, plan.watermark, plan.events,
                        tuple(rows), trips, len(closes), plan.duplicates if self.merge else 0)
