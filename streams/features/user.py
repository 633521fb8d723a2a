"""User features: windowed activity, recency, current session, mean rating, dismiss rate.

User features are the same for every candidate of a request (broadcast); they
let the ranker condition item features on how active the user is right now.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Sequence


from schemas.events import Event, Rate
from streams.features import keys
from streams.features.config import FeatureConfig, WriteContext, seconds
from streams.features.decay import num, ratio
from streams.features.family import Column, Family, Raw, broadcast, collect
from streams.features.interactions import INTERACTIONS
from streams.features.windows import count_name, window_counts, window_emit, window_reads
from streams.store import Read
from streams.writes import Write, WriteSink


def names(cfg: FeatureConfig) -> tuple[str, ...]:
    out = [count_name(t, "user", w.name) for t in cfg.window_types for w in cfg.windows]
    out += ["last_interaction_age_s_by_user", "session_event_count_by_user",
            "session_length_s_by_user", "rating_mean_by_user", "dismiss_rate_by_user"]
    return tuple(out)


def emit(event: Event, ts: float, cfg: FeatureConfig, ctx: WriteContext, out: WriteSink) -> None:
    if not isinstance(event, INTERACTIONS):
        return
    user, t = event.user_id, event.type
    agg = keys.user_agg(user)
    window_emit(out, keys.user_window, user, t, ts, cfg)
    out.hincrby(agg, t, 1)
    out.hincrby(agg, "all", 1)
    recent = keys.user_recent(user)
    out.zmax(recent, event.event_id, ts)
    out.ztrim(recent, cfg.recent_keep)
    if isinstance(event, Rate):
        out.hincrby(agg, "rating_sum", event.rating)
        out.hincrby(agg, "rating_n", 1)


def writes(event: Event, cfg: FeatureConfig, ctx: WriteContext) -> list[Write]:
    return collect(emit, event, cfg, ctx)


def reads(user_id: str, item_ids: Sequence[str], now: datetime, cfg: FeatureConfig) -> list[Read]:
    return window_reads(keys.user_window, user_id, seconds(now), cfg) + [
        Read("hgetall", keys.user_agg(user_id)),
        Read("zrevrange", keys.user_recent(user_id), (0, cfg.recent_keep - 1)),
    ]


def current_session(times_s: Sequence[float], now_s: float, gap_s: float) -> tuple[int, float]:
    """(events, length in s) of the session still open at ``now``.

    A session is a run of events whose consecutive gaps are <= ``gap_s``; it is
    open at ``now`` if its last event is at most ``gap_s`` before ``now``.
    Events after ``now`` are ignored.
    """
    ts = sorted((t for t in times_s if t <= now_s), reverse=True)
    if not ts or now_s - ts[0] > gap_s:
        return 0, 0.0
    count, start = 1, ts[0]
    for t in ts[1:]:
        if start - t > gap_s:
            break
        count, start = count + 1, t
    return count, ts[0] - start


def values(raw: Raw, user_id: str, item_ids: Sequence[str], now: datetime,
           cfg: FeatureConfig) -> dict[str, Column]:
    now_s, n = seconds(now), len(item_ids)
    out: dict[str, Column] = {}
    for (t, w), c in window_counts(raw, keys.user_window, user_id, now_s, cfg).items():
        out[count_name(t, "user", w)] = broadcast(c, n)
    recent = raw.get(Read("zrevrange", keys.user_recent(user_id), (0, cfg.recent_keep - 1))) or []
    times = [float(s) for _, s in recent if float(s) <= now_s]
    out["last_interaction_age_s_by_user"] = broadcast(now_s - max(times) if times else math.nan, n)
    events, length = current_session(times, now_s, cfg.session_gap_s)
    out["session_event_count_by_user"] = broadcast(float(events), n)
    out["session_length_s_by_user"] = broadcast(length, n)
    agg: dict[str, str] = raw.get(Read("hgetall", keys.user_agg(user_id))) or {}
    out["rating_mean_by_user"] = broadcast(ratio(num(agg.get("rating_sum")), num(agg.get("rating_n"))), n)
    out["dismiss_rate_by_user"] = broadcast(ratio(num(agg.get("dismiss")), num(agg.get("all"))), n)
    return {name: out[name] for name in names(cfg)}


FAMILY = Family("user", names, emit, reads, values)
