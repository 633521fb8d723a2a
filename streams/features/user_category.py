"""User x category features: decayed category affinity of the user, matched to the item.

State: ``user:{u}:cataff`` (zset, category -> log2 forward-decayed weighted
interaction count, half-life ``affinity_half_life_s``, trimmed to the top
``category_keep``) and ``user:{u}:decay`` member ``cat_total`` (the same sum over
all categorised interactions, for the share).  An interaction adds its type
weight once to each of the item's categories, as known when it is processed
(``WriteContext``).  Trimming is the one order-sensitive step: results are
exact while a user has at most ``category_keep`` categories.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Sequence

import numpy as np

from schemas.events import Event
from streams.features import keys
from streams.features.config import FeatureConfig, WriteContext, seconds
from streams.features.decay import decayed, log2_weight
from streams.features.family import Column, Family, Raw
from streams.features.interactions import INTERACTIONS
from streams.features.item import item_categories
from streams.store import Read
from streams.writes import Write, zlogadd, ztrim

NAMES = ("category_affinity_by_user_item", "category_affinity_share_by_user_item",
         "category_top_match_by_user_item")
TOTAL = "cat_total"


def names(cfg: FeatureConfig) -> tuple[str, ...]:
    return NAMES


def writes(event: Event, cfg: FeatureConfig, ctx: WriteContext) -> list[Write]:
    if not isinstance(event, INTERACTIONS):
        return []
    weight = cfg.type_weights.get(event.type, 0.0)
    cats = ctx.categories(event.item_id)
    if weight <= 0 or not cats:
        return []
    lw = log2_weight(weight, seconds(event.ts), cfg.affinity_half_life_s, cfg.epoch_s)
    key = keys.user_cataff(event.user_id)
    out = [zlogadd(key, c, lw) for c in dict.fromkeys(cats)]
    out += [ztrim(key, cfg.category_keep), zlogadd(keys.user_decay(event.user_id), TOTAL, lw)]
    return out


def reads(user_id: str, item_ids: Sequence[str], now: datetime, cfg: FeatureConfig) -> list[Read]:
    return [Read("zrevrange", keys.user_cataff(user_id), (0, -1)),
            Read("zscore", keys.user_decay(user_id), (TOTAL,))] + [
        Read("hgetall", keys.item_cats(item)) for item in item_ids]


def values(raw: Raw, user_id: str, item_ids: Sequence[str], now: datetime,
           cfg: FeatureConfig) -> dict[str, Column]:
    now_s, n, h = seconds(now), len(item_ids), cfg.affinity_half_life_s
    ranked = sorted(raw.get(Read("zrevrange", keys.user_cataff(user_id), (0, -1))) or [],
                    key=lambda ms: (-float(ms[1]), ms[0]))
    aff = {m: decayed(float(s), now_s, h, cfg.epoch_s) for m, s in ranked}
    top = {m for m, _ in ranked[: cfg.top_categories]}
    total = decayed(raw.get(Read("zscore", keys.user_decay(user_id), (TOTAL,))), now_s, h, cfg.epoch_s)
    cols = {name: np.zeros(n, dtype=np.float64) for name in NAMES}
    for j, item in enumerate(item_ids):
        cats = item_categories(raw, item)
        best = max((aff.get(c, 0.0) for c in cats), default=0.0)
        cols["category_affinity_by_user_item"][j] = best
        cols["category_affinity_share_by_user_item"][j] = best / total if total > 0 else math.nan
        cols["category_top_match_by_user_item"][j] = 1.0 if any(c in top for c in cats) else 0.0
    return cols


FAMILY = Family("user_category", names, writes, reads, values)
