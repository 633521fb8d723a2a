"""Seeded random event streams and helpers shared by the feature reference tests."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from schemas.events import (Click, Dismiss, Event, Implement, Impression, ItemMeta, Rate, Save,
                            Share, View)
from streams.features.config import FeatureConfig
from streams.features.family import Column, Family
from streams.features.replay import apply_events
from streams.store_memory import MemoryStore

START = datetime(2025, 3, 3, 8, 0, tzinfo=timezone.utc)
SPAN_S = 9 * 86400
CATEGORIES = ("news", "tools", "sport", "food", "art")
KINDS = ("view", "click", "save", "share", "rate", "implement", "dismiss", "impression")
KIND_WEIGHTS = (30, 15, 4, 3, 5, 3, 4, 12)


def make_events(seed: int, n: int = 400, n_users: int = 4, n_items: int = 8,
                span_s: int = SPAN_S, burst: bool = True) -> list[Event]:
    """ItemMeta for all but the last item first, then interactions and impressions in
    shuffled (out-of-order) event time, with some retried duplicates."""
    rng = random.Random(seed)
    users = [f"u{k}" for k in range(n_users)]
    items = [f"i{k}" for k in range(n_items)]
    out: list[Event] = []
    for k, item in enumerate(items[:-1]):
        cats = rng.sample(CATEGORIES, rng.randint(0 if k == 0 else 1, 3))
        created = START - timedelta(hours=rng.randint(0, 48)) if rng.random() < 0.5 else None
        out.append(ItemMeta(event_id=f"m{k}", ts=START + timedelta(seconds=rng.randint(0, 3600)),
                            item_id=item, categories=cats, created_at=created))
    body: list[Event] = []
    end = START + timedelta(seconds=span_s)
    for k in range(n):
        if burst and rng.random() < 0.4:  # dense recent activity exercises 1h windows/sessions
            ts = end - timedelta(seconds=rng.uniform(0, 7200))
        else:
            ts = START + timedelta(seconds=rng.uniform(0, span_s))
        ts = ts.replace(microsecond=(ts.microsecond // 1000) * 1000)
        u, i = rng.choice(users), rng.choice(items)
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        base: dict[str, Any] = {"event_id": f"e{k}", "ts": ts, "user_id": u}
        ev: Event
        if kind == "impression":
            shown = rng.sample(items, rng.randint(1, 5)) + ([i] if rng.random() < 0.2 else [])
            ev = Impression(**base, request_id=f"r{k}", item_ids=shown, model_version="m1")
        elif kind == "view":
            dwell = int(rng.lognormvariate(9.5, 1.5)) if rng.random() < 0.95 else 0
            ev = View(**base, item_id=i, dwell_ms=min(dwell, 24 * 3600 * 1000))
        elif kind == "rate":
            ev = Rate(**base, item_id=i, rating=rng.randint(1, 5))
        else:
            cls = {"click": Click, "save": Save, "share": Share, "implement": Implement,
                   "dismiss": Dismiss}[kind]
            ev = cls(**base, item_id=i)
        body.append(ev)
    rng.shuffle(body)
    body += rng.sample(body, len(body) // 10)  # retried deliveries: must not double-count
    return out + body


def unique(events: Sequence[Event]) -> list[Event]:
    seen: dict[str, Event] = {}
    for e in events:
        seen.setdefault(e.event_id, e)
    return list(seen.values())


def build_store(events: Sequence[Event], cfg: FeatureConfig, batch_size: int = 64) -> MemoryStore:
    store = MemoryStore()
    asyncio.run(apply_events(store, events, cfg, batch_size=batch_size))
    return store


def family_values(store: MemoryStore, family: Family, user: str, items: Sequence[str],
                  now: datetime, cfg: FeatureConfig) -> dict[str, Column]:
    reads = family.reads(user, items, now, cfg)
    results = asyncio.run(store.read(reads))
    return family.values(dict(zip(reads, results)), user, items, now, cfg)


def last_ts(events: Sequence[Event]) -> datetime:
    return max(e.ts for e in events)
