"""Core online state rules: per-item counts, trending, fresh items, user history, metadata.

Pure: events in, ``Write`` descriptions out.  The event's own ``ts`` is the clock.

Trending is a *forward-decayed* sum kept in log2 space: an interaction of
weight w at time t adds 2^(log2(w) + t/H) to the item's score, H being the
half-life.  The value at time ``now`` is 2^(score - now/H), so ranking by the
stored score equals ranking by the decayed popularity at any ``now``, the sum
is order-independent, and log space never overflows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson

from schemas.events import Event, Impression, ItemMeta, Rate, UserMeta, View
from streams import keys
from streams.writes import Write, WriteList, WriteSink

INTERACTION_WEIGHT: dict[str, float] = {
    "view": 0.5,
    "click": 1.0,
    "save": 3.0,
    "share": 3.0,
    "implement": 4.0,
    "dismiss": 0.0,  # no popularity credit; counted, and excluded for the user
}


@dataclass(frozen=True)
class StateConfig:
    trending_half_life_s: float = 86400.0
    history_keep: int = keys.HISTORY_KEEP
    fresh_keep: int = keys.FRESH_KEEP


def interaction_weight(event: Event) -> float:
    """Popularity weight of an interaction; ratings scale with the stars (1 -> 0.4, 5 -> 2.0)."""
    if isinstance(event, Rate):
        return 0.4 * event.rating
    if isinstance(event, View):
        return 0.5
    return INTERACTION_WEIGHT.get(event.type, 0.0)


def trending_log2(weight: float, ts_s: float, half_life_s: float) -> float:
    return math.log2(weight) + ts_s / half_life_s


def decayed(score_log2: float, now_s: float, half_life_s: float) -> float:
    """Decayed popularity at ``now`` from a stored forward-decayed log2 score."""
    return float(2.0 ** (score_log2 - now_s / half_life_s))


def state_writes(event: Event, cfg: StateConfig = StateConfig()) -> list[Write]:
    out = WriteList()
    state_emit(event, event.ts.timestamp(), cfg, out)
    return out.writes


def state_emit(event: Event, ts: float, cfg: StateConfig, out: WriteSink) -> None:
    """The event's core state writes into ``out`` (``ts`` = the event time in epoch s)."""
    out.hmax(keys.CLOCK, "max_event_ts", ts)
    if isinstance(event, ItemMeta):
        created = event.created_at.timestamp() if event.created_at else ts
        meta = keys.item_meta(event.item_id)
        out.hset(meta, "categories", orjson.dumps(event.categories).decode())
        out.hset(meta, "attrs", orjson.dumps(event.attributes).decode())
        out.hset(meta, "created_ts", repr(created))
        out.zmax(keys.FRESH, event.item_id, created)
        out.ztrim(keys.FRESH, cfg.fresh_keep)
        out.hincrby(keys.STATS, "applied:item")
    elif isinstance(event, UserMeta):
        out.hset(keys.user_meta(event.user_id), "attrs", orjson.dumps(event.attributes).decode())
        out.hincrby(keys.STATS, "applied:user")
    elif isinstance(event, Impression):
        out.hincrby(keys.STATS, "applied:impression")
    else:  # interactions
        item, t = event.item_id, event.type
        history = keys.user_history(event.user_id)
        out.hincrby(keys.item_counts(item), t)
        out.zmax(history, item, ts)
        out.ztrim(history, cfg.history_keep)
        out.hincrby(keys.STATS, f"applied:{t}")
        w = interaction_weight(event)
        if w > 0:
            out.zlogadd(keys.TRENDING, item, trending_log2(w, ts, cfg.trending_half_life_s))
