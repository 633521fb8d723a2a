"""Item features: windowed counts, decayed popularity, smoothed rates, rating, dwell, age.

Writes touch ``item:{i}:*`` keys and the global category-stats hash; see
docs/features.md for every formula.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Sequence

import numpy as np

from schemas.events import Event, Impression, ItemMeta, Rate, View
from streams.dwell import histogram_quantile
from streams.features import keys
from streams.features.config import FeatureConfig, WriteContext, seconds
from streams.features.decay import decayed, log2_weight, num, ratio
from streams.features.family import Column, Family, Raw
from streams.features.interactions import INTERACTIONS
from streams.features.windows import count_name, window_counts, window_reads, window_writes
from streams.store import Read
from streams.writes import Write, hincrby, hincrbyfloat, hmin, hset, zlogadd

PRIOR_TYPES = ("click", "implement")
# Sum of squared dwell in units of 1.024 s: every term d^2 / 2^20 is exact in
# binary floating point, so the float sum is exact and the same in any order
# (decimal-second squares would round differently per interleaving).
BINARY_S = 1024.0
SQ_TO_S2 = (BINARY_S / 1000.0) ** 2


def names(cfg: FeatureConfig) -> tuple[str, ...]:
    out = [count_name(t, "item", w.name) for t in cfg.window_types for w in cfg.windows]
    out += [f"popularity_decayed_by_item_{hl}" for hl, _ in cfg.popularity_half_lives]
    out += ["ctr_smoothed_by_item", "implement_rate_smoothed_by_item", "rating_mean_by_item",
            "dwell_mean_s_by_item", "dwell_std_s_by_item"]
    out += [f"dwell_{q}_s_by_item" for q, _ in cfg.dwell_quantiles]
    out += ["long_view_rate_by_item", "age_s_by_item"]
    return tuple(out)


def _category_writes(type_: str, cats: Sequence[str]) -> list[Write]:
    return [hincrby(keys.CATEGORY_STATS, type_, 1)] + [
        hincrby(keys.CATEGORY_STATS, f"{type_}:{c}", 1) for c in cats
    ]


def writes(event: Event, cfg: FeatureConfig, ctx: WriteContext) -> list[Write]:
    ts = seconds(event.ts)
    if isinstance(event, ItemMeta):
        first = min(ts, seconds(event.created_at)) if event.created_at else ts
        cats = list(dict.fromkeys(event.categories))
        return [hset(keys.item_cats(event.item_id), "list", json.dumps(cats)),
                hmin(keys.item_agg(event.item_id), "first_seen", first)]
    if isinstance(event, Impression):
        out: list[Write] = []
        for item in dict.fromkeys(event.item_ids):
            agg = keys.item_agg(item)
            out += [hincrby(agg, "impression", 1), hmin(agg, "first_seen", ts)]
            out += _category_writes("impression", ctx.categories(item))
        return out
    if not isinstance(event, INTERACTIONS):
        return []
    item, t = event.item_id, event.type
    agg = keys.item_agg(item)
    out = window_writes(keys.item_window, item, t, ts, cfg)
    out += [hincrby(agg, t, 1), hmin(agg, "first_seen", ts)]
    weight = cfg.type_weights.get(t, 0.0)
    if weight > 0:
        out += [zlogadd(keys.item_decay(item), f"pop:{hl}", log2_weight(weight, ts, h, cfg.epoch_s))
                for hl, h in cfg.popularity_half_lives]
    if t in PRIOR_TYPES:
        out += _category_writes(t, ctx.categories(item))
    if isinstance(event, Rate):
        out += [hincrby(agg, "rating_sum", event.rating), hincrby(agg, "rating_n", 1)]
    if isinstance(event, View):
        d = event.dwell_ms
        out += [hincrby(agg, "dwell_n", 1), hincrby(agg, "dwell_sum_ms", d),
                hincrbyfloat(agg, "dwell_sumsq_b2", (d / BINARY_S) ** 2),
                hincrby(agg, f"dwell_b:{cfg.dwell_buckets.bucket(d)}", 1)]
        if d >= cfg.long_view_ms:
            out.append(hincrby(agg, "dwell_long", 1))
    return out


def reads(user_id: str, item_ids: Sequence[str], now: datetime, cfg: FeatureConfig) -> list[Read]:
    now_s = seconds(now)
    out = [Read("hgetall", keys.CATEGORY_STATS)]
    for item in item_ids:
        out += window_reads(keys.item_window, item, now_s, cfg)
        out += [Read("hgetall", keys.item_agg(item)), Read("zrevrange", keys.item_decay(item), (0, -1)),
                Read("hgetall", keys.item_cats(item))]
    return out


def item_categories(raw: Raw, item_id: str) -> tuple[str, ...]:
    stored: dict[str, str] = raw.get(Read("hgetall", keys.item_cats(item_id))) or {}
    return tuple(json.loads(stored.get("list", "[]")))


def smoothed(hits: float, trials: float, prior: float, strength: float) -> float:
    return (hits + strength * prior) / (trials + strength)


def category_prior(stats_: dict[str, str], type_: str, cats: Sequence[str], base: float,
                   strength: float) -> float:
    """Global rate smoothed towards ``base``; each category smoothed towards the global
    rate; the item's prior is the mean over its categories (the global rate if none)."""
    glob = smoothed(num(stats_.get(type_)), num(stats_.get("impression")), base, strength)
    if not cats:
        return glob
    per_cat = [smoothed(num(stats_.get(f"{type_}:{c}")), num(stats_.get(f"impression:{c}")),
                        glob, strength) for c in cats]
    return sum(per_cat) / len(per_cat)


def values(raw: Raw, user_id: str, item_ids: Sequence[str], now: datetime,
           cfg: FeatureConfig) -> dict[str, Column]:
    now_s, n = seconds(now), len(item_ids)
    cols = {name: np.zeros(n, dtype=np.float64) for name in names(cfg)}
    cstats: dict[str, str] = raw.get(Read("hgetall", keys.CATEGORY_STATS)) or {}
    nb = cfg.dwell_buckets.n
    for j, item in enumerate(item_ids):
        for (t, w), c in window_counts(raw, keys.item_window, item, now_s, cfg).items():
            cols[count_name(t, "item", w)][j] = c
        decay = dict(raw.get(Read("zrevrange", keys.item_decay(item), (0, -1))) or [])
        for hl, h in cfg.popularity_half_lives:
            cols[f"popularity_decayed_by_item_{hl}"][j] = decayed(decay.get(f"pop:{hl}"), now_s, h,
                                                                  cfg.epoch_s)
        agg: dict[str, str] = raw.get(Read("hgetall", keys.item_agg(item))) or {}
        cats = item_categories(raw, item)
        imps, m = num(agg.get("impression")), cfg.prior_strength
        for t, base, name in (("click", cfg.ctr_prior, "ctr_smoothed_by_item"),
                              ("implement", cfg.implement_prior, "implement_rate_smoothed_by_item")):
            prior = category_prior(cstats, t, cats, base, m)
            cols[name][j] = smoothed(num(agg.get(t)), imps, prior, m)
        cols["rating_mean_by_item"][j] = ratio(num(agg.get("rating_sum")), num(agg.get("rating_n")))
        dn = num(agg.get("dwell_n"))
        mean_s = ratio(num(agg.get("dwell_sum_ms")) / 1000.0, dn)
        cols["dwell_mean_s_by_item"][j] = mean_s
        cols["dwell_std_s_by_item"][j] = (
            math.sqrt(max(0.0, num(agg.get("dwell_sumsq_b2")) * SQ_TO_S2 / dn - mean_s**2))
            if dn > 0 else math.nan)
        hist = [num(agg.get(f"dwell_b:{k}")) for k in range(nb)]
        for qn, q in cfg.dwell_quantiles:
            cols[f"dwell_{qn}_s_by_item"][j] = histogram_quantile(hist, q, cfg.dwell_buckets) / 1000.0
        cols["long_view_rate_by_item"][j] = ratio(num(agg.get("dwell_long")), dn)
        first = agg.get("first_seen")
        cols["age_s_by_item"][j] = now_s - num(first) if first is not None else math.nan
    return cols


FAMILY = Family("item", names, writes, reads, values)
