"""The full per-batch plan against a store: context read, plan, label closes.

Shared by the worker (streams.processor), ``streamrec replay`` and the tests'
in-memory reference, so that all three run the same code.  Round trips per
batch: one read (categories, dedupe marks, vector meta + vectors, label
watermark + oldest open impressions); a second read only when the item-factor
version changed or impression windows close in this batch; then the caller's
single atomic ``apply``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

from schemas.codec import Rejection
from schemas.events import Event
from streams import overlay
from streams.batch import BatchPlan, Decoded, PlanConfig, Record, decode_records, offset_marks, plan_decoded
from streams.batch_context import BatchContext, build_context, context_reads, meta_of, open_bound
from streams.embeddings import VectorMeta
from streams.label_flow import buffer_reads, close, due_impressions, impression_reads, open_reads
from streams.labels import TrainingRow
from streams.store import Group, Guarded, Read, Store
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
    marks: int = 0  # unguarded groups of offset bookkeeping (streams.batch.offset_marks)


@dataclass(frozen=True)
class ContextReads:
    """A batch context's reads and their answers (``Planner.context_reads``)."""

    reads: Sequence[Read]
    results: Sequence[Any]
    meta: VectorMeta | None
    trips: int


@dataclass(frozen=True)
class PreparedReads:
    """``Planner.prepare_reads``: a part's first context read, widened to replay ``prev`` on it."""

    dec: Decoded
    prev: Sequence[Group]
    meta: VectorMeta | None
    ov: overlay.Overlay  # ``ov.original``: the part's reads as asked


@dataclass
class Planner:
    cfg: PlanConfig = field(default_factory=PlanConfig)
    topic: str = ""
    cache: MetaCache = field(default_factory=MetaCache)
    merge: bool = True  # one merged GuardedBatch for the batch's events (False: one group per event)
    read_s: float = 0.0  # wall time awaiting the store's reads (a metric)

    async def plan(self, store: Store, records: Sequence[Record], now: datetime) -> FullPlan:
        return await self.plan_decoded(store, decode_records(records, now, self.topic))

    async def plan_decoded(self, store: Store, dec: Decoded) -> FullPlan:
        ctx, trips = await self.context(store, dec)
        return await self.finish(store, dec, ctx, trips)

    async def context(self, store: Store, dec: Decoded,
                      prev: Sequence[Group] | None = None) -> tuple[BatchContext, int]:
        """The batch context and the round trips it took.  ``prev``: the groups of an apply not
        yet sent, whose writes the context must include (streams.overlay); raises NotReplayable
        when they cannot be replayed on these reads (then read after that apply instead)."""
        return self.context_build(dec, await self.context_reads(store, dec, prev))

    def context_build(self, dec: Decoded, got: ContextReads) -> tuple[BatchContext, int]:
        """The batch context from ``context_reads``' answers (no store access: a caller may send
        its next apply before building it)."""
        return build_context(dec, got.reads, got.results, got.meta), got.trips

    def prepare_reads(self, dec: Decoded, prev: Sequence[Group]) -> PreparedReads:
        """The first round trip of ``context_reads`` with ``prev``, widened for the overlay, ready to
        send (a caller can do this while an earlier apply still runs); raises NotReplayable."""
        reads = context_reads(dec, self.cfg, self.cache.meta)
        ov = overlay.prepare(prev, reads)
        if ov is None:
            raise NotReplayable()
        return PreparedReads(dec, prev, self.cache.meta, ov)

    async def context_reads(self, store: Store, dec: Decoded, prev: Sequence[Group] | None = None,
                            prepared: PreparedReads | None = None) -> ContextReads:
        """The reads ``context`` builds on, made (1-3 round trips) but not yet turned into a context.
        ``prepared``: this call's ``prepare_reads``, used if made for the same part, ``prev`` and model."""
        meta = self.cache.meta
        if prepared is not None and prepared.dec is dec and prepared.prev is prev and prepared.meta == meta:
            reads, ov = list(prepared.ov.original), prepared.ov
        else:
            reads, ov = context_reads(dec, self.cfg, meta), None
        results = await self._read(store, reads, prev, ov)
        trips = 1
        seen_meta = meta_of(reads, results)
        if seen_meta != meta:  # a new item-factor model was published: fetch its vectors
            self.cache.meta = meta = seen_meta
            extra = vector_reads(dec.events, meta) if self.cfg.vectors.enabled else []
            if extra:
                results += await self._read(store, extra, prev)
                reads = reads + extra
                trips += 1
        upper = open_bound(dec, reads, results, self.cfg)
        if upper is not None:  # impressions may be due: fetch the open ones below the bound
            extra = open_reads(upper, self.cfg.labels)
            results += await self._read(store, extra, prev)
            reads = reads + extra
            trips += 1
        return ContextReads(reads, results, meta, trips)

    async def _read(self, store: Store, reads: Sequence[Read], prev: Sequence[Group] | None,
                    ov: overlay.Overlay | None = None) -> list[Any]:
        t0 = time.perf_counter()
        try:
            return await _read(store, reads, prev, ov)
        finally:
            self.read_s += time.perf_counter() - t0

    def plan_part(self, dec: Decoded, ctx: BatchContext) -> BatchPlan:
        return plan_decoded(dec, self.cfg, ctx, self.merge)

    async def finish(self, store: Store, dec: Decoded, ctx: BatchContext, trips: int,
                     plan: BatchPlan | None = None) -> FullPlan:
        """Plan (unless given) and close the impressions due.  The close reads must see every
        earlier apply: a caller overlapping applies waits for them before calling this with
        ``plan.due`` set."""
        if plan is None:
            plan = plan_decoded(dec, self.cfg, ctx, self.merge)
        closes: list[Guarded] = []
        rows: list[TrainingRow] = []
        if plan.due:
            # two reads: the impressions, then only the part of each user's buffer inside its window
            ireads = impression_reads(plan.due, plan.events)
            ires = await self._read(store, ireads, None) if ireads else []
            imps = due_impressions(plan.due, ireads, ires, plan.events)
            breads = buffer_reads(imps, self.cfg.labels)
            bres = await self._read(store, breads, None) if breads else []
            trips += bool(ireads) + bool(breads)
            closes, rows = close(plan.due, imps, breads, bres, plan.events, self.cfg.labels)
        groups: tuple[Group, ...] = plan.merged() if self.merge else plan.guarded
        marks = offset_marks(dec.imp_watermark)
        return FullPlan(groups + tuple(closes) + marks, plan.rejected, plan.watermark, plan.events,
                        tuple(rows), trips, len(closes), plan.duplicates if self.merge else 0, len(marks))


class NotReplayable(Exception):
    """The previous apply's writes cannot be replayed on these reads (streams.overlay)."""


async def _read(store: Store, reads: Sequence[Read], prev: Sequence[Group] | None,
                ov: overlay.Overlay | None = None) -> list[Any]:
    """``reads`` as after ``prev``'s writes; ``ov``: ``overlay.prepare(prev, reads)`` if already made."""
    if prev is None:
        return list(await store.read(reads))
    if ov is None:
        ov = overlay.prepare(prev, reads)
    if ov is None:
        raise NotReplayable()
    return overlay.answer(ov, list(await store.read(ov.reads)))
