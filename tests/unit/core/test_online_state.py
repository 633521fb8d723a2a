"""Core online state against batch references computed straight from the events."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from schemas.events import Click, Dismiss, Event, ItemMeta, Rate, Save, View
from streams import keys
from streams.batch import Record, plan_batch
from streams.online_state import StateConfig, decayed, interaction_weight, state_writes
from streams.store import Guarded, Read
from streams.store_memory import MemoryStore
from schemas.codec import encode

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
H = 3600.0


def stream(n: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    out: list[Event] = []
    for i in range(n):
        ts = T0 + timedelta(seconds=rng.randrange(0, 3 * 86400))  # deliberately out of order
        u, it = f"u{rng.randrange(8)}", f"i{rng.randrange(12)}"
        k = rng.randrange(5)
        if k == 0:
            out.append(View(event_id=f"e{i}", ts=ts, user_id=u, item_id=it, dwell_ms=rng.randrange(0, 9000)))
        elif k == 1:
            out.append(Click(event_id=f"e{i}", ts=ts, user_id=u, item_id=it))
        elif k == 2:
            out.append(Save(event_id=f"e{i}", ts=ts, user_id=u, item_id=it))
        elif k == 3:
            out.append(Rate(event_id=f"e{i}", ts=ts, user_id=u, item_id=it, rating=rng.randint(1, 5)))
        else:
            out.append(Dismiss(event_id=f"e{i}", ts=ts, user_id=u, item_id=it))
    return out


def apply_all(events: list[Event], cfg: StateConfig, chunk: int = 1) -> MemoryStore:
    store = MemoryStore()
    for start in range(0, len(events), chunk):
        batch = [Guarded(e.event_id, tuple(state_writes(e, cfg))) for e in events[start:start + chunk]]
        asyncio.run(store.apply(batch))
    return store


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trending_equals_batch_decayed_sum_at_every_step(seed: int) -> None:
    cfg = StateConfig(trending_half_life_s=H)
    events = stream(120, seed)
    store = MemoryStore()
    seen: list[Event] = []
    for e in events:
        asyncio.run(store.apply([Guarded(e.event_id, tuple(state_writes(e, cfg)))]))
        seen.append(e)
        now = max(x.ts for x in seen).timestamp() + 600
        (top,) = asyncio.run(store.read([Read("zrevrange", keys.TRENDING, (0, -1))]))
        got = {m: decayed(s, now, H) for m, s in top}
        ref: dict[str, float] = {}
        for x in seen:
            w = interaction_weight(x)
            if w > 0:
                ref[x.item_id] = ref.get(x.item_id, 0.0) + w * 2 ** (-(now - x.ts.timestamp()) / H)
        assert got.keys() == ref.keys()
        for item, v in ref.items():
            assert math.isclose(got[item], v, rel_tol=1e-9), (item, got[item], v)


def test_counts_history_and_order_independence() -> None:
    cfg = StateConfig(history_keep=5)
    events = stream(300, 3)
    store = apply_all(events, cfg)
    shuffled = events[:]
    random.Random(9).shuffle(shuffled)
    other = apply_all(shuffled, cfg, chunk=17)
    assert asyncio.run(store.digest()) == asyncio.run(other.digest())

    ref: dict[str, Counter[str]] = {}
    for e in events:
        ref.setdefault(e.item_id, Counter())[e.type] += 1
    for item, c in ref.items():
        assert store.hashes[keys.item_counts(item)] == {k: str(v) for k, v in c.items()}
    # history keeps each user's 5 most recent distinct items, by their latest interaction time
    for u in {e.user_id for e in events}:
        latest: dict[str, float] = {}
        for e in events:
            if e.user_id == u:
                latest[e.item_id] = max(latest.get(e.item_id, 0.0), e.ts.timestamp())
        want = sorted(latest.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:5]
        assert sorted(store.zsets[keys.user_history(u)].items()) == sorted(want)


def test_dismiss_gets_no_popularity_and_ratings_scale() -> None:
    ts = T0
    assert interaction_weight(Dismiss(event_id="d", ts=ts, user_id="u", item_id="i")) == 0
    assert interaction_weight(Rate(event_id="r", ts=ts, user_id="u", item_id="i", rating=5)) > interaction_weight(
        Rate(event_id="r", ts=ts, user_id="u", item_id="i", rating=1))
    writes = state_writes(Dismiss(event_id="d", ts=ts, user_id="u", item_id="i"))
    assert all(w.key != keys.TRENDING for w in writes)


def test_item_metadata_feeds_fresh_items() -> None:
    a = ItemMeta(event_id="m1", ts=T0, item_id="old", categories=["x"], created_at=T0 - timedelta(days=30))
    b = ItemMeta(event_id="m2", ts=T0, item_id="new", categories=["y"], created_at=T0)
    store = apply_all([a, b], StateConfig())
    (fresh,) = asyncio.run(store.read([Read("zrevrange", keys.FRESH, (0, -1))]))
    assert [m for m, _ in fresh] == ["new", "old"]


def test_plan_batch_dedupes_dead_letters_by_position_and_tracks_watermark() -> None:
    good = encode(Click(event_id="c1", ts=T0, user_id="u", item_id="i"))
    recs = [Record(0, 10, good), Record(1, 4, b"{bad"), Record(0, 11, good)]
    plan = plan_batch(recs, T0 + timedelta(days=1), "events")
    assert plan.watermark == {0: 12, 1: 5}
    assert [g.dedupe_id for g in plan.guarded] == ["c1", "dlq:events:1:4", "c1"]
    assert len(plan.rejected) == 1
    store = MemoryStore()
    res = asyncio.run(store.apply(plan.guarded, plan.watermark))
    assert (res.applied, res.duplicates) == (2, 1)
    res2 = asyncio.run(store.apply(plan.guarded, plan.watermark))
    assert (res2.applied, res2.duplicates) == (0, 3)
    assert store.hashes[keys.STATS]["dead_letters"] == "1"
    assert store.hashes[keys.item_counts("i")] == {"click": "1"}
