"""Apply one consumed batch: plan (streams.pipeline), dead-letter the rejects, emit the
training rows, then one atomic store call.

The caller acknowledges the batch's offsets only after ``process`` returns, so a
crash anywhere re-delivers the batch, and the store's dedupe marks make the
re-delivery a no-op for everything already applied.  Dead letters and training
rows are delivered *before* the apply: a crash between the two re-emits them
(at-least-once on those topics; rows carry a ``row_id`` for consumers to drop
repeats), never loses them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Awaitable, Callable, Iterator, Sequence

from schemas.codec import dead_letter
from schemas.events import View
from streams.batch import Decoded, PlanConfig, Record, decode_records, split_events
from streams.batch_context import BatchContext
from streams.dwell import DwellSketch
from streams.training_records import group_json, group_rows
from streams.pipeline import ContextReads, FullPlan, NotReplayable, Planner, PreparedReads
from streams.store import ApplyResult, PendingApply, Store, StoreUnavailable

log = logging.getLogger("streamrec.worker")

Sink = Callable[[bytes, bytes | None], Awaitable[None]]
SEND_AT_ONCE = 1000  # dead letters + training rows in flight at once
DeadLetterSink = Sink


def _events_in(rec: Record) -> int:
    """Events a record holds, cheaply estimated: a batch record counts its event ids."""
    return max(1, rec.value.count(b'"event_id"')) if rec.value[:1] == b"[" else 1


async def _discard(value: bytes, key: bytes | None) -> None:
    return None


@dataclass(frozen=True)
class _InFlight:
    dec: Decoded
    plan: FullPlan
    handle: PendingApply


@dataclass
class Counters:
    batches: int = 0
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    store_retries: int = 0
    training_rows: int = 0
    label_closes: int = 0
    round_trips: int = 0
    conflicts: int = 0
    busy_s: float = 0.0
    # wall time awaiting each dependency (the rest of busy_s is the worker's own CPU; the store
    # reads are timed where they are made, streams.pipeline.Planner.read_s)
    wait_apply_s: float = 0.0  # the atomic applies: sending them and awaiting their answers
    wait_emit_s: float = 0.0  # dead letters + training rows acknowledged by the broker
    idle_s: float = 0.0  # awaiting the next consumed batch (set by the worker's loop)


@dataclass
class BatchProcessor:
    store: Store
    dead_letter_sink: Sink
    clock: Callable[[], datetime]
    topic: str
    cfg: PlanConfig = field(default_factory=PlanConfig)
    training_sink: Sink = _discard
    counters: Counters = field(default_factory=Counters)
    dwell: DwellSketch = field(default_factory=DwellSketch)
    max_backoff_s: float = 5.0
    planner: Planner | None = None
    max_events: int = 250  # events per plan + atomic apply (STREAMREC_WORKER_APPLY_EVENTS)
    overlap: bool = True  # plan the next part while the store applies this one (STREAMREC_WORKER_OVERLAP)

    def __post_init__(self) -> None:
        if self.planner is None:
            self.planner = Planner(self.cfg, self.topic)

    async def process(self, records: Sequence[Record]) -> FullPlan | None:
        """Apply a consumed batch; one plan + one atomic apply per ``max_events`` events (batch
        records can make a few Kafka records hold many thousands; a record may be cut between
        two applies).  Bounding the events per apply bounds how long one Lua call holds Redis.

        With ``overlap`` the next part is planned while the store applies the current one: its
        context is read just before the current apply is sent and the current writes are
        replayed on it (streams.overlay), so every plan equals the sequential one; applies still
        run one after another, in order.  Only the read itself sits between two applies: the
        current part's dead letters and rows go out before it, its request is packed during the
        apply before (``Store.prepare_apply``), and the answers become the next context after the
        current apply has been sent.  Returns the last plan."""
        if not records:
            return None
        t0 = time.perf_counter()
        now = self.clock()
        parts = self._parts(records, now)
        if self.overlap:
            plan = await self._overlapped(parts, now)
        else:
            plan = None
            for part in parts:
                plan = await self._apply(part, now)
        self.counters.records += len(records)
        self.counters.busy_s += time.perf_counter() - t0
        return plan

    def _parts(self, records: Sequence[Record], now: datetime) -> Iterator[Decoded]:
        start = 0
        while start < len(records):
            # decode record by record until a part holds max_events events (bounded memory)
            end, n = start, 0
            while end < len(records) and (n == 0 or n < self.max_events):
                n += _events_in(records[end])
                end += 1
            yield from split_events(decode_records(records[start:end], now, self.topic), self.max_events)
            start = end

    async def _overlapped(self, parts: Iterator[Decoded], now: datetime) -> FullPlan | None:
        planner = self.planner
        assert planner is not None
        first = next(parts, None)
        if first is None:
            return None
        ready_dec = first
        ready = await self._plan(first)
        flight: _InFlight | None = None
        for dec in parts:
            n = len(dec.items)
            try:  # this part's first read, made ready while the apply before still runs
                early: PreparedReads | None = planner.prepare_reads(dec, ready.guarded)
            except NotReplayable:
                early = None
            if flight is not None and not await self._settle(flight, now):
                # the previous apply conflicted and was planned and applied again: so must this one
                ready = await self._plan(ready_dec)
            flight = None
            prev = ready.guarded  # after a conflict, not what ``early`` was made for: it is not used
            await self._emit(ready, now)  # delivered before its apply is sent
            try:  # read before the ready part's apply is sent, replaying its writes on the answers
                raw: ContextReads | None = await self._retry(
                    lambda: planner.context_reads(self.store, dec, prev, early), n)
            except NotReplayable:
                raw = None
            flight = await self._begin(ready_dec, ready)
            # the answers become a context while the store applies the ready part
            got: tuple[BatchContext, int] | None = None if raw is None else planner.context_build(dec, raw)
            if got is None:
                ok = await self._settle(flight, now)
                flight = None
                nxt = await self._plan(dec)
            else:
                bp = planner.plan_part(dec, got[0])  # runs while the store applies the ready part
                ok = True
                if bp.due:  # closing impressions reads state the in-flight apply writes
                    ok = await self._settle(flight, now)
                    flight = None
                if ok:
                    ctx, trips = got
                    nxt = await self._retry(lambda: planner.finish(self.store, dec, ctx, trips, bp), n)
                else:
                    nxt = await self._plan(dec)
            ready_dec, ready = dec, nxt
            if flight is not None:  # pack the ready part (the last one too) while the one before applies
                self.store.prepare_apply(ready.guarded, ready.watermark)
        if flight is not None and not await self._settle(flight, now):
            ready = await self._plan(ready_dec)
        return await self._apply(ready_dec, now, ready)

    async def _emit(self, plan: FullPlan, now: datetime) -> None:
        """Dead letters and training rows, all delivered before the apply: sent together (up to
        ``SEND_AT_ONCE`` in flight) instead of waiting for each one's acknowledgement in turn."""
        sends: list[tuple[Sink, bytes, bytes | None]] = []
        for rec, rej in plan.rejected:
            src = Record(rec.partition, rec.offset, b"", rec.topic or self.topic, rec.index).source
            sends.append((self.dead_letter_sink, dead_letter(rej, src, now), None))
        for group in group_rows(plan.rows):  # one record per impression (a record per row costs 10x)
            sends.append((self.training_sink, group_json(group), group[0].group_id.encode()))
        if not sends:
            return
        t0 = time.perf_counter()
        for start in range(0, len(sends), SEND_AT_ONCE):
            await asyncio.gather(*(sink(v, k) for sink, v, k in sends[start:start + SEND_AT_ONCE]))
        self.counters.wait_emit_s += time.perf_counter() - t0

    async def _begin(self, dec: Decoded, plan: FullPlan) -> _InFlight:
        """Send the part's apply (its dead letters and rows already delivered by ``_emit``)."""
        begin = self.store.apply_begin
        t0 = time.perf_counter()
        handle = await self._retry(lambda: begin(plan.guarded, plan.watermark), len(dec.items))
        self.counters.wait_apply_s += time.perf_counter() - t0
        return _InFlight(dec, plan, handle)

    async def _settle(self, fl: _InFlight, now: datetime) -> bool:
        """Wait for an in-flight apply; False if it conflicted (then its part has been planned
        and applied again, so any plan made on top of it is stale)."""
        n = len(fl.dec.items)
        t0 = time.perf_counter()
        try:
            res = await fl.handle.result()
            self.counters.wait_apply_s += time.perf_counter() - t0
        except (StoreUnavailable, asyncio.TimeoutError) as err:
            # unknown whether it ran: send it again (its dedupe marks make a repeat a conflict)
            self.counters.store_retries += 1
            log.warning("store unavailable (%s); retrying batch of %d", err, n)
            res = await self._retry(lambda: self.store.apply(fl.plan.guarded, fl.plan.watermark), n)
        if res.conflict:
            self._conflict(n)
            await self._apply(fl.dec, now)
            return False
        self._account(fl.plan, res)
        return True

    async def _plan(self, dec: Decoded) -> FullPlan:
        planner = self.planner
        assert planner is not None
        return await self._retry(lambda: planner.plan_decoded(self.store, dec), len(dec.items))  # type: ignore[no-any-return]

    async def _apply(self, dec: Decoded, now: datetime, plan: FullPlan | None = None) -> FullPlan:
        """Plan (unless ``plan`` is given), emit and apply one part, planning again after a conflict."""
        n = len(dec.items)
        while True:
            p = plan if plan is not None else await self._plan(dec)
            await self._emit(p, now)
            t0 = time.perf_counter()
            res = await self._retry(lambda: self.store.apply(p.guarded, p.watermark), n)
            self.counters.wait_apply_s += time.perf_counter() - t0
            if not res.conflict:
                break
            self._conflict(n)
            plan = None
        self._account(p, res)
        return p

    def _conflict(self, n: int) -> None:
        # another worker applied some of these events since the plan read their marks
        # (a rebalance overlap): nothing was written, the part is planned again against the new state
        self.counters.conflicts += 1
        log.warning("batch of %d events conflicts with another worker's writes; planning it again", n)

    def _account(self, plan: FullPlan, res: ApplyResult) -> None:
        for e in plan.events:
            if isinstance(e, View):
                self.dwell.update(e.dwell_ms)
        c = self.counters
        c.batches += 1
        c.dead_letters += len(plan.rejected)
        c.applied += res.applied - len(plan.rejected) - plan.closes - plan.marks
        c.duplicates += res.duplicates + plan.duplicates
        c.training_rows += len(plan.rows)
        c.label_closes += plan.closes
        c.round_trips += plan.round_trips

    async def _retry(self, fn, n: int):  # type: ignore[no-untyped-def]
        backoff = 0.1
        while True:
            try:
                return await fn()
            except (StoreUnavailable, asyncio.TimeoutError) as err:
                # Never drop a batch: hold the offsets and retry until the store is back.
                self.counters.store_retries += 1
                log.warning("store unavailable (%s); retrying batch of %d in %.1fs", err, n, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
