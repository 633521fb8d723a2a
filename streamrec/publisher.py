"""Publish events to the events topic with a progress bar, an optional rate limit and a limit."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Iterable

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from schemas.events import Event
from streamrec.batch_records import event_key, send_batches
from streamrec.kafka import ensure_topics, start_producer
from streamrec.settings import Settings

__all__ = ["PublishResult", "event_key", "publish_events"]


@dataclass(frozen=True)
class PublishResult:
    published: int
    seconds: float
    partitions: dict[int, int]  # partition -> highest offset + 1 written


async def publish_events(
    s: Settings,
    events: Iterable[Event],
    total: int | None = None,
    rate: float | None = None,
    desc: str = "publishing",
    progress: bool = True,
    producer: AIOKafkaProducer | None = None,
    batch: int | None = None,
) -> PublishResult:
    """Publish in order as batch records of up to ``batch`` events (default
    ``STREAMREC_PUBLISH_BATCH``; 1 = one record per event).  With ``rate``, events go out
    in 50 ms slices so the rate holds while records still carry many events."""
    await ensure_topics(s)
    size = batch or s.publish_batch
    own = producer is None
    p = producer or await start_producer(s)
    n = 0
    marks: dict[int, int] = {}
    t0 = time.monotonic()
    chunk: list[Event] = []
    per_chunk = 2000 if not rate else max(1, int(rate * 0.05))
    bar = tqdm(total=total, desc=desc, unit="ev", disable=not progress, mininterval=0.5)

    async def flush() -> None:
        if chunk:
            futs = await send_batches(p, s.topic_events, chunk, size)
            _collect(await asyncio.gather(*futs), marks)  # type: ignore[arg-type]
            bar.update(len(chunk))
            chunk.clear()

    try:
        for ev in events:
            chunk.append(ev)
            n += 1
            if len(chunk) >= per_chunk:
                await flush()
                if rate:
                    ahead = n / rate - (time.monotonic() - t0)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        await flush()
    finally:
        bar.close()
        if own:
            await p.stop()
    return PublishResult(n, time.monotonic() - t0, marks)


def _collect(metas: list[object], marks: dict[int, int]) -> None:
    for md in metas:
        part, off = md.partition, md.offset  # type: ignore[attr-defined]
        if marks.get(part, -1) < off + 1:
            marks[part] = off + 1
