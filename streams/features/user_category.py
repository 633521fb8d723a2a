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
from streams.features.family import Column, Family, Raw, by_key, collect
from streams.features.interactions import INTERACTIONS
from streams.features.item import categories_of
from streams.store import Read
from streams.writes import Write, WriteSink

NAMES = ("category_affinity_by_user_item", "category_affinity_share_by_user_item",
         "category_top_match_by_user_item")
TOTAL = "cat_total"


def names(cfg: FeatureConfig) -> tuple[str, ...]:
    return NAMES


def emit(event: Event, ts: float, cfg: FeatureConfig, ctx: WriteContext, out: WriteSink) -> None:
    if not isinstance(event, INTERACTIONS):
        return
    weight = cfg.type_weights.get(event.type, 0.0)
    cats = ctx.categories(event.item_id)
    if weight <= 0 or not cats:
        return
    lw = log2_weight(weight, ts, cfg.affinity_half_life_s, cfg.epoch_s)
    key = keys.user_cataff(event.user_id)
    for c in (dict.fromkeys(cats) if len(cats) > 1 else cats):
        out.zlogadd(key, c, lw)
    out.ztrim(key, cfg.category_keep)
    out.zlogadd(keys.user_decay(event.user_id), TOTAL, lw)


def writes(event: Event, cfg: FeatureConfig, ctx: WriteContext) -> list[Write]:
    return collect(emit, event, cfg, ctx)


def reads(user_id: str, item_ids: Sequence[str], now: datetime, cfg: FeatureConfig) -> list[Read]:
    return [Read("zrevrange", keys.user_cataff(user_id), (0, -1)),
            Read("zscore", keys.user_decay(user_id), (TOTAL,))] + [
        Read("hgetall", keys.item_cats(item)) for item in item_ids]


def values(raw: Raw, user_id: str, item_ids: Sequence[str], now: datetime,
           cfg: FeatureConfig) -> dict[str, Column]:
    """All candidates at once: computed once per distinct category set, then gathered."""
    now_s, n, h = seconds(now), len(item_ids), cfg.affinity_half_life_s
    found = by_key(raw)
    ranked = sorted(found.get(("zrevrange", keys.user_cataff(user_id), (0, -1))) or [],
                    key=lambda ms: (-float(ms[1]), ms[0]))
    aff = {m: decayed(float(s), now_s, h, cfg.epoch_s) for m, s in ranked}
    top = {m for m, _ in ranked[: cfg.top_categories]}
    total = decayed(found.get(("zscore", keys.user_decay(user_id), (TOTAL,))), now_s, h, cfg.epoch_s)
    item_cats = categories_of(found, item_ids)
    per_set: dict[tuple[str, ...], tuple[float, float]] = {}
    for cats in set(item_cats):
        per_set[cats] = (max((aff.get(c, 0.0) for c in cats), default=0.0),
                         1.0 if any(c in top for c in cats) else 0.0)
    both = np.array([per_set[c] for c in item_cats], dtype=np.float64).reshape(n, 2)
    best = both[:, 0]
    share = best / total if total > 0 else np.full(n, math.nan)
    return {"category_affinity_by_user_item": best.copy(),
            "category_affinity_share_by_user_item": share,
            "category_top_match_by_user_item": both[:, 1].copy()}


FAMILY = Family("user_category", names, emit, reads, values)
