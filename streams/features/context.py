"""Context features of the request time: cyclical hour of day and day of week (UTC).

hour = seconds since UTC midnight / 3600, encoded as sin/cos(2*pi*hour/24);
day = weekday (Mon=0) + hour/24, encoded as sin/cos(2*pi*day/7).  No state.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Sequence

from schemas.events import Event
from streams.features.config import FeatureConfig, WriteContext
from streams.features.family import Column, Family, Raw, broadcast
from streams.store import Read
from streams.writes import Write, WriteSink

NAMES = ("hour_of_day_sin_by_context", "hour_of_day_cos_by_context",
         "day_of_week_sin_by_context", "day_of_week_cos_by_context")


def names(cfg: FeatureConfig) -> tuple[str, ...]:
    return NAMES


def emit(event: Event, ts: float, cfg: FeatureConfig, ctx: WriteContext, out: WriteSink) -> None:
    return None


def writes(event: Event, cfg: FeatureConfig, ctx: WriteContext) -> list[Write]:
    return []


def reads(user_id: str, item_ids: Sequence[str], now: datetime, cfg: FeatureConfig) -> list[Read]:
    return []


def cyclical(now: datetime) -> tuple[float, float, float, float]:
    t = now.astimezone(timezone.utc)
    hour = t.hour + t.minute / 60.0 + (t.second + t.microsecond / 1e6) / 3600.0
    day = t.weekday() + hour / 24.0
    a, b = 2.0 * math.pi * hour / 24.0, 2.0 * math.pi * day / 7.0
    return math.sin(a), math.cos(a), math.sin(b), math.cos(b)


def values(raw: Raw, user_id: str, item_ids: Sequence[str], now: datetime,
           cfg: FeatureConfig) -> dict[str, Column]:
    return {name: broadcast(v, len(item_ids)) for name, v in zip(NAMES, cyclical(now))}


FAMILY = Family("context", names, emit, reads, values)
