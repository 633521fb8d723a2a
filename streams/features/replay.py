"""Apply events to a Store exactly as the worker does (offline replays, tests).

Point-in-time features for training come from replaying the event log through
this and reading ``assemble`` at the impression time: the same code as online.
"""

from __future__ import annotations

from typing import Sequence

from schemas.events import Event
from streams.features.categories import batch_contexts, context_reads_for_batch
from streams.features.config import FeatureConfig
from streams.features.registry import DEFAULT_CONFIG, all_writes
from streams.store import ApplyResult, Guarded, Store


async def apply_batch(store: Store, events: Sequence[Event],
                      cfg: FeatureConfig = DEFAULT_CONFIG) -> ApplyResult:
    reads = context_reads_for_batch(events)
    results = await store.read(reads) if reads else []
    ctxs = batch_contexts(events, reads, results)
    return await store.apply([Guarded(e.event_id, tuple(all_writes(e, cfg, c)))
                              for e, c in zip(events, ctxs)])


async def apply_events(store: Store, events: Sequence[Event], cfg: FeatureConfig = DEFAULT_CONFIG,
                       batch_size: int = 256) -> None:
    for start in range(0, len(events), batch_size):
        await apply_batch(store, events[start:start + batch_size], cfg)
