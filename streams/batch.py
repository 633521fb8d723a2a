"""Turn one consumed batch of raw records into guarded writes and dead letters (pure).

This is the whole per-batch logic of the worker, shared by the Faust agent, the
replay command and tests, so that live processing and rebuilds cannot diverge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Sequence

from schemas.codec import Rejection, decode
from schemas.events import Event
from streams import keys
from streams.online_state import StateConfig, state_writes
from streams.store import Guarded
from streams.writes import Write, hincrby

WritesFn = Callable[[Event], list[Write]]


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed Kafka record: coordinates plus the original bytes."""

    partition: int
    offset: int
    value: bytes


@dataclass(frozen=True)
class BatchPlan:
    guarded: tuple[Guarded, ...]
    rejected: tuple[tuple[Record, Rejection], ...]
    watermark: dict[int, int] = field(default_factory=dict)
    events: tuple[Event, ...] = ()


def dead_letter_guard(topic: str, rec: Record) -> Guarded:
    """Counts a dead letter once, however often the record is re-delivered."""
    return Guarded(f"dlq:{topic}:{rec.partition}:{rec.offset}", (hincrby(keys.STATS, "dead_letters"),))


def plan_batch(
    records: Sequence[Record],
    now: datetime,
    topic: str,
    cfg: StateConfig = StateConfig(),
    extra_writes: WritesFn | None = None,
) -> BatchPlan:
    guarded: list[Guarded] = []
    rejected: list[tuple[Record, Rejection]] = []
    events: list[Event] = []
    wm: dict[int, int] = {}
    for rec in records:
        if wm.get(rec.partition, -1) < rec.offset + 1:
            wm[rec.partition] = rec.offset + 1
        result = decode(rec.value, now)
        if isinstance(result, Rejection):
            rejected.append((rec, result))
            guarded.append(dead_letter_guard(topic, rec))
            continue
        writes = state_writes(result, cfg)
        if extra_writes is not None:
            writes = writes + extra_writes(result)
        guarded.append(Guarded(result.event_id, tuple(writes)))
        events.append(result)
    return BatchPlan(tuple(guarded), tuple(rejected), wm, tuple(events))
