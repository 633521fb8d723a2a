"""Point-in-time features for historical (user, items, time) queries, from the stream's own code.

The event log is replayed in event-time order through ``streams.features.replay``
(the worker's writes) into a ``MemoryStore``; just before the first event at or
after a query's time, the query is answered with ``registry.all_reads`` +
``registry.assemble`` (serving's reads).  So a training row sees exactly the
state serving would have seen at that moment, and there is one feature
implementation.  ``replay_from`` optionally skips events older than a horizon
(long windows then start empty; ``None`` replays everything).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from schemas.events import Event
from streams.features.config import FeatureConfig
from streams.features.registry import DEFAULT_CONFIG, all_reads, assemble, feature_names
from streams.features.replay import apply_events
from streams.store_memory import MemoryStore

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Query:
    user_id: str
    item_ids: tuple[str, ...]
    ts: float  # epoch seconds; state includes every event strictly before it


def names(cfg: FeatureConfig = DEFAULT_CONFIG) -> tuple[str, ...]:
    return feature_names(cfg)


async def _answer(events: Sequence[Event], queries: Sequence[Query], cfg: FeatureConfig,
                  progress: bool, batch_size: int) -> list[F32]:
    store = MemoryStore("pit")
    order = sorted(range(len(queries)), key=lambda q: queries[q].ts)
    out: list[F32 | None] = [None] * len(queries)
    ts = np.fromiter((e.ts.timestamp() for e in events), dtype=np.float64, count=len(events))
    if len(ts) > 1 and np.any(np.diff(ts) < 0):
        raise ValueError("events must be sorted by event time (snapshots are)")
    applied = 0
    with tqdm(total=len(events), desc="point-in-time replay", unit="ev", disable=not progress, mininterval=0.5) as bar:
        for q in order:
            query = queries[q]
            upto = int(np.searchsorted(ts, query.ts, side="left"))
            if upto > applied:
                await apply_events(store, events[applied:upto], cfg, batch_size)
                bar.update(upto - applied)
                applied = upto
            now = datetime.fromtimestamp(query.ts, tz=timezone.utc)
            reads = all_reads(query.user_id, list(query.item_ids), now, cfg)
            results = await store.read(reads)
            _, x = assemble(results, query.user_id, list(query.item_ids), now, cfg)
            out[q] = x
    return [x for x in out if x is not None]


def features_at(events: Sequence[Event], queries: Sequence[Query], cfg: FeatureConfig = DEFAULT_CONFIG,
                progress: bool = False, batch_size: int = 512) -> list[F32]:
    """One (len(items), n_features) float32 matrix per query, in the order of ``queries``."""
    return asyncio.run(_answer(events, queries, cfg, progress, batch_size))
