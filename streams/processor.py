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
from typing import Awaitable, Callable, Sequence

from schemas.codec import dead_letter
from schemas.events import View
from streams.batch import Decoded, PlanConfig, Record, decode_records, split_events
from streams.dwell import DwellSketch
from streams.label_flow import row_json
from streams.pipeline import FullPlan, Planner
from streams.store import Store, StoreUnavailable

log = logging.getLogger("streamrec.worker")

Sink = Callable[[bytes, bytes | None], Awaitable[None]]
DeadLetterSink = Sink


def _events_in(rec: Record) -> int:
    """Events a record holds, cheaply estimated: a batch record counts its event ids."""
    return max(1, rec.value.count(b'"event_id"')) if rec.value[:1] == b"[" else 1


async def _discard(value: bytes, key: bytes | None) -> None:
    return None


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

    def __post_init__(self) -> None:
        if self.planner is None:
            self.planner = Planner(self.cfg, self.topic)

    async def process(self, records: Sequence[Record]) -> FullPlan | None:
        """Apply a consumed batch; one plan + one atomic apply per ``max_events`` events (batch
        records can make a few Kafka records hold many thousands; a record may be cut between
        two applies).  Bounding the events per apply bounds how long one Lua call holds Redis.
        Returns the last plan."""
        if not records:
            return None
        t0 = time.perf_counter()
        now = self.clock()
        assert self.planner is not None
        plan = None
        start = 0
        while start < len(records):
            # decode record by record until a part holds max_events events (bounded memory)
            end, n = start, 0
            while end < len(records) and (n == 0 or n < self.max_events):
                n += _events_in(records[end])
                end += 1
            for part in split_events(decode_records(records[start:end], now, self.topic), self.max_events):
                plan = await self._apply(part, now)
            start = end
        self.counters.records += len(records)
        self.counters.busy_s += time.perf_counter() - t0
        return plan

    async def _apply(self, dec: Decoded, now: datetime) -> FullPlan:
        n = len(dec.items)
        planner = self.planner
        assert planner is not None
        while True:
            plan = await self._retry(lambda: planner.plan_decoded(self.store, dec), n)
            for rec, rej in plan.rejected:
                src = Record(rec.partition, rec.offset, b"", rec.topic or self.topic, rec.index).source
                await self.dead_letter_sink(dead_letter(rej, src, now), None)
            for row in plan.rows:
                await self.training_sink(row_json(row), row.group_id.encode())
            res = await self._retry(lambda: self.store.apply(plan.guarded, plan.watermark), n)
            if not res.conflict:
                break
            # another worker applied some of these events since the plan read their marks
            # (a rebalance overlap): nothing was written, plan again against the new state
            self.counters.conflicts += 1
            log.warning("batch of %d events conflicts with another worker's writes; planning it again", n)
        for e in plan.events:
            if isinstance(e, View):
                self.dwell.update(e.dwell_ms)
        c = self.counters
        c.batches += 1
        c.dead_letters += len(plan.rejected)
        c.applied += res.applied - len(plan.rejected) - plan.closes
        c.duplicates += res.duplicates + plan.duplicates
        c.training_rows += len(plan.rows)
        c.label_closes += plan.closes
        c.round_trips += plan.round_trips
        return plan

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
