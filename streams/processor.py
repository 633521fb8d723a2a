"""Apply one consumed batch: plan (pure), dead-letter the rejects, then one atomic store call.

The caller acknowledges the batch's offsets only after ``process`` returns, so a
crash anywhere re-delivers the batch, and the store's dedupe marks make the
re-delivery a no-op for everything already applied.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Awaitable, Callable, Sequence

from schemas.codec import dead_letter
from streams.batch import Record, plan_batch
from streams.online_state import StateConfig
from streams.store import Store, StoreUnavailable

log = logging.getLogger("streamrec.worker")

DeadLetterSink = Callable[[bytes, bytes | None], Awaitable[None]]


@dataclass
class Counters:
    batches: int = 0
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    store_retries: int = 0


@dataclass
class BatchProcessor:
    store: Store
    dead_letter_sink: DeadLetterSink
    clock: Callable[[], datetime]
    topic: str
    cfg: StateConfig = StateConfig()
    counters: Counters = field(default_factory=Counters)
    max_backoff_s: float = 5.0

    async def process(self, records: Sequence[Record]) -> None:
        if not records:
            return
        now = self.clock()
        plan = plan_batch(records, now, self.topic, self.cfg)
        for rec, rej in plan.rejected:
            await self.dead_letter_sink(dead_letter(rej, f"{self.topic}/{rec.partition}/{rec.offset}", now), None)
        backoff = 0.1
        while True:
            try:
                res = await self.store.apply(plan.guarded, plan.watermark)
                break
            except (StoreUnavailable, asyncio.TimeoutError) as err:
                # Never drop a batch: hold the offsets and retry until the store is back.
                self.counters.store_retries += 1
                log.warning("store unavailable (%s); retrying batch of %d in %.1fs", err, len(records), backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
        c = self.counters
        c.batches += 1
        c.records += len(records)
        c.dead_letters += len(plan.rejected)
        c.applied += res.applied - len(plan.rejected)
        c.duplicates += res.duplicates
