"""User x item features: seen before, times seen, interactions, last interaction type and age.

State: one hash per user, ``user:{u}:ui``, three fields per item it touched:
``s:<item>`` impressions (times shown), ``n:<item>`` interactions, and
``l:<item>`` the *packed* last interaction ``ts_ms * 8 + type code`` kept with
``hmax`` -- a commutative "last write wins by event time" (ties at the same
millisecond go to the higher type code).  Serving reads all candidates with a
single HMGET.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Sequence

import numpy as np

from schemas.events import Event, Impression
from streams.features import keys
from streams.features.config import TYPE_CODE, TYPE_CODE_BASE, FeatureConfig, WriteContext, seconds
from streams.features.family import Column, Family, Raw, by_key, collect, floats
from streams.features.interactions import INTERACTIONS
from streams.store import Read
from streams.writes import Write, WriteSink

NAMES = ("seen_before_by_user_item", "times_seen_by_user_item", "interaction_count_by_user_item",
         "last_interaction_type_by_user_item", "last_interaction_age_s_by_user_item")


def names(cfg: FeatureConfig) -> tuple[str, ...]:
    return NAMES


def pack_last(ts_s: float, type_: str) -> int:
    return int(round(ts_s * 1000.0)) * TYPE_CODE_BASE + TYPE_CODE[type_]


def unpack_last(packed: float) -> tuple[float, int]:
    """(ts in s, type code) of a packed last-interaction value."""
    p = int(packed)
    return (p // TYPE_CODE_BASE) / 1000.0, p % TYPE_CODE_BASE


def emit(event: Event, ts: float, cfg: FeatureConfig, ctx: WriteContext, out: WriteSink) -> None:
    if isinstance(event, INTERACTIONS):
        key = keys.user_items(event.user_id)
        item = event.item_id
        out.hincrby(key, f"n:{item}", 1)
        out.hmax(key, f"l:{item}", pack_last(ts, event.type))
    elif isinstance(event, Impression):
        key = keys.user_items(event.user_id)
        for item in dict.fromkeys(event.item_ids):
            out.hincrby(key, f"s:{item}", 1)
    else:
        return
    if cfg.emit_ttl:
        out.expire(key, cfg.user_item_ttl_s)


def writes(event: Event, cfg: FeatureConfig, ctx: WriteContext) -> list[Write]:
    return collect(emit, event, cfg, ctx)


def _fields(item_ids: Sequence[str]) -> tuple[str, ...]:
    return tuple(f for item in item_ids for f in (f"s:{item}", f"n:{item}", f"l:{item}"))


def reads(user_id: str, item_ids: Sequence[str], now: datetime, cfg: FeatureConfig) -> list[Read]:
    return [Read("hmget", keys.user_items(user_id), _fields(item_ids))]


def values(raw: Raw, user_id: str, item_ids: Sequence[str], now: datetime,
           cfg: FeatureConfig) -> dict[str, Column]:
    """All candidates at once from the one HMGET (numpy; same floats as item by item)."""
    now_s, n = seconds(now), len(item_ids)
    got = by_key(raw).get(("hmget", keys.user_items(user_id), _fields(item_ids))) or [None] * (3 * n)
    shown, acted, last = floats(got[0::3]), floats(got[1::3]), got[2::3]
    cols = {"seen_before_by_user_item": ((shown > 0) | (acted > 0)).astype(np.float64),
            "times_seen_by_user_item": shown,
            "interaction_count_by_user_item": acted}
    kind, age = np.full(n, math.nan), np.full(n, math.nan)
    has = np.array([v is not None for v in last], dtype=bool)
    if has.any():
        packed = floats([v for v in last if v is not None]).astype(np.int64)  # int(float), as unpack_last
        kind[has] = packed % TYPE_CODE_BASE
        age[has] = now_s - (packed // TYPE_CODE_BASE) / 1000.0
    cols["last_interaction_type_by_user_item"] = kind
    cols["last_interaction_age_s_by_user_item"] = age
    return {name: cols[name] for name in NAMES}


FAMILY = Family("user_item", names, emit, reads, values)
