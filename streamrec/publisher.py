"""Publish events to the events topic with a progress bar, an optional rate limit and a limit."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Iterable

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from schemas.codec import encode
from schemas.events import Event
from streamrec.kafka import ensure_topics, start_producer
from streamrec.settings import Settings


@dataclass(frozen=True)
class PublishResult:
    published: int
    seconds: float
    partitions: dict[int, int]  # partition -> highest offset + 1 written


def event_key(event: Event) -> bytes:
    uid = getattr(event, "user_id", None)
    return str(uid if uid is not None else getattr(event, "item_id", event.event_id)).encode()


async def publish_events(
    s: Settings,
    events: Iterable[Event],
    total: int | None = None,
    rate: float | None = None,
    desc: str = "publishing",
    progress: bool = True,
    producer: AIOKafkaProducer | None = None,
) -> PublishResult:
    await ensure_topics(s)
    own = producer is None
    p = producer or await start_producer(s)
    n = 0
    marks: dict[int, int] = {}
    t0 = time.monotonic()
    pending: list[asyncio.Future[object]] = []
    bar = tqdm(total=total, desc=desc, unit="ev", disable=not progress, mininterval=0.5)
    try:
        for ev in events:
            pending.append(await p.send(s.topic_events, key=event_key(ev), value=encode(ev)))
            n += 1
            if len(pending) >= 2000:
                _collect(await asyncio.gather(*pending), marks)
                bar.update(len(pending))
                pending.clear()
            if rate:
                ahead = n / rate - (time.monotonic() - t0)
                if ahead > 0.002:
                    if pending:
                        _collect(await asyncio.gather(*pending), marks)
                        bar.update(len(pending))
                        pending.clear()
                    await asyncio.sleep(ahead)
        if pending:
            _collect(await asyncio.gather(*pending), marks)
            bar.update(len(pending))
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
