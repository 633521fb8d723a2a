"""The per-item ``values`` of the item, user x item and user x category families as they
were before the numpy rewrite; kept only as the reference the vectorised code must equal
float for float (tests/unit/features/test_vectorised.py)."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Sequence

import numpy as np

from streams.dwell import histogram_quantile
from streams.features import keys
from streams.features.config import FeatureConfig, seconds
from streams.features.decay import decayed, num, ratio
from streams.features.family import Column, Raw
from streams.features.item import SQ_TO_S2, category_prior, names, smoothed
from streams.features.user_category import NAMES as UC_NAMES
from streams.features.user_category import TOTAL
from streams.features.user_item import NAMES as UI_NAMES
from streams.features.user_item import _fields, unpack_last
from streams.features.windows import count_name, window_counts
from streams.store import Read


def item_categories(raw: Raw, item_id: str) -> tuple[str, ...]:
    stored: dict[str, str] = raw.get(Read("hgetall", keys.item_cats(item_id))) or {}
    return tuple(json.loads(stored.get("list", "[]")))


def item_values(raw: Raw, user_id: str, item_ids: Sequence[str], now: datetime,
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


def user_item_values(raw: Raw, user_id: str, item_ids: Sequence[str], now: datetime,
                     cfg: FeatureConfig) -> dict[str, Column]:
    now_s, n = seconds(now), len(item_ids)
    cols = {name: np.zeros(n, dtype=np.float64) for name in UI_NAMES}
    got = raw.get(Read("hmget", keys.user_items(user_id), _fields(item_ids))) or [None] * (3 * n)
    for j in range(n):
        shown, acted, last = num(got[3 * j]), num(got[3 * j + 1]), got[3 * j + 2]
        cols["seen_before_by_user_item"][j] = 1.0 if shown > 0 or acted > 0 else 0.0
        cols["times_seen_by_user_item"][j] = shown
        cols["interaction_count_by_user_item"][j] = acted
        if last is None:
            cols["last_interaction_type_by_user_item"][j] = math.nan
            cols["last_interaction_age_s_by_user_item"][j] = math.nan
        else:
            ts, code = unpack_last(num(last))
            cols["last_interaction_type_by_user_item"][j] = float(code)
            cols["last_interaction_age_s_by_user_item"][j] = now_s - ts
    return cols


def user_category_values(raw: Raw, user_id: str, item_ids: Sequence[str], now: datetime,
                         cfg: FeatureConfig) -> dict[str, Column]:
    now_s, n, h = seconds(now), len(item_ids), cfg.affinity_half_life_s
    ranked = sorted(raw.get(Read("zrevrange", keys.user_cataff(user_id), (0, -1))) or [],
                    key=lambda ms: (-float(ms[1]), ms[0]))
    aff = {m: decayed(float(s), now_s, h, cfg.epoch_s) for m, s in ranked}
    top = {m for m, _ in ranked[: cfg.top_categories]}
    total = decayed(raw.get(Read("zscore", keys.user_decay(user_id), (TOTAL,))), now_s, h, cfg.epoch_s)
    cols = {name: np.zeros(n, dtype=np.float64) for name in UC_NAMES}
    for j, item in enumerate(item_ids):
        cats = item_categories(raw, item)
        best = max((aff.get(c, 0.0) for c in cats), default=0.0)
        cols["category_affinity_by_user_item"][j] = best
        cols["category_affinity_share_by_user_item"][j] = best / total if total > 0 else math.nan
        cols["category_top_match_by_user_item"][j] = 1.0 if any(c in top for c in cats) else 0.0
    return cols
