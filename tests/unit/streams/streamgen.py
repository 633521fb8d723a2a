"""A partitioned event stream (events + impressions topics) and an in-memory worker run."""

from __future__ import annotations

import asyncio
import random
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Sequence

import numpy as np

from schemas.codec import encode
from schemas.events import Click, Dismiss, Event, Implement, Impression, ItemMeta, Rate, Save, View
from streams import keys
from streams.batch import PlanConfig, Record
from streams.embeddings import encode_f32
from streams.label_flow import LabelFlowConfig
from streams.labels import LabelConfig
from streams.processor import BatchProcessor
from streams.store_memory import MemoryStore

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
IMP_TOPIC = "imps"
VERSION = "m7"
DIM = 4


def cfg(partitions: int, lateness_s: float = 30.0) -> PlanConfig:
    return PlanConfig(labels=LabelFlowConfig(LabelConfig(window_s=120.0), lateness_s, 3600.0, 1000, partitions))


def partition_of(key: str, n: int) -> int:
    return zlib.crc32(key.encode()) % n


@dataclass
class Stream:
    records: list[Record] = field(default_factory=list)  # in publish (time) order
    events: list[Event] = field(default_factory=list)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


def make_stream(seed: int, n: int = 400, partitions: int = 3, users: int = 12, items: int = 10) -> Stream:
    rng = random.Random(seed)
    s = Stream()
    nrng = np.random.default_rng(seed)
    s.vectors = {f"i{k}": nrng.normal(size=DIM) for k in range(items - 3)}  # i7..i9 are new items
    offsets: dict[tuple[str, int], int] = {}

    def add(ev: Event, topic: str, key: str) -> None:
        p = partition_of(key, partitions)
        off = offsets.get((topic, p), 0)
        offsets[(topic, p)] = off + 1
        s.records.append(Record(p, off, encode(ev), topic))
        s.events.append(ev)

    for k in range(items):
        add(ItemMeta(event_id=f"m{k}", ts=T0, item_id=f"i{k}", categories=[rng.choice("abc")]), "", f"i{k}")
    t = T0
    for k in range(n):
        t += timedelta(seconds=rng.uniform(0, 20))
        u, i = f"u{rng.randrange(users)}", f"i{rng.randrange(items)}"
        r = rng.random()
        base = dict(event_id=f"e{k}", ts=t, user_id=u)
        if r < 0.2:
            shown = rng.sample([f"i{j}" for j in range(items)], 4)
            add(Impression(**base, request_id=f"r{k}", item_ids=shown, model_version="v1"), IMP_TOPIC, u)
            continue
        ev: Event
        if r < 0.45:
            ev = View(**base, item_id=i, dwell_ms=rng.randrange(0, 90_000))
        elif r < 0.65:
            ev = Click(**base, item_id=i)
        elif r < 0.72:
            ev = Save(**base, item_id=i)
        elif r < 0.8:
            ev = Implement(**base, item_id=i)
        elif r < 0.9:
            ev = Rate(**base, item_id=i, rating=rng.randint(1, 5))
        else:
            ev = Dismiss(**base, item_id=i)
        add(ev, "", u)
    return s


def publish_vectors(store: MemoryStore, vectors: dict[str, np.ndarray]) -> None:
    store.hashes[keys.VEC_META] = {"version": VERSION, "dim": str(DIM)}
    for item, v in vectors.items():
        store.strings[keys.trained_item_vector(VERSION, item)] = encode_f32(v)


def interleave(records: Sequence[Record], seed: int) -> list[Record]:
    """Another consumer's order: per (topic, partition) order kept, partitions mixed at random.

    Item metadata stays first: categories are "as known when an interaction is processed"
    (docs/features.md), the one documented order dependence of the feature library."""
    rng = random.Random(seed)
    metas = [r for r in records if r.value.startswith(b'{"schema_version":1,"event_id":"m')]
    queues: dict[tuple[str, int], list[Record]] = {}
    for r in records[len(metas):]:
        queues.setdefault((r.topic, r.partition), []).append(r)
    out: list[Record] = list(metas)
    while queues:
        k = rng.choice(sorted(queues))
        take = rng.randint(1, 40)
        out += queues[k][:take]
        queues[k] = queues[k][take:]
        if not queues[k]:
            del queues[k]
    return out


@dataclass
class Run:
    store: MemoryStore
    rows: list[bytes]


def run(records: Sequence[Record], plan_cfg: PlanConfig, vectors: dict[str, np.ndarray] | None,
        batch: int = 50, store: MemoryStore | None = None, rows: list[bytes] | None = None,
        max_events: int = 250, overlap: bool = True) -> Run:
    store = store or MemoryStore()
    if vectors is not None:
        publish_vectors(store, vectors)
    out: list[bytes] = [] if rows is None else rows

    async def sink(v: bytes, k: bytes | None) -> None:
        out.append(v)

    async def dlq(v: bytes, k: bytes | None) -> None:
        return None

    proc = BatchProcessor(store, dlq, lambda: T0 + timedelta(days=30), "", plan_cfg, training_sink=sink,
                          max_events=max_events, overlap=overlap)

    async def go() -> None:
        for start in range(0, len(records), batch):
            await proc.process(records[start:start + batch])

    asyncio.run(go())
    return Run(store, out)
