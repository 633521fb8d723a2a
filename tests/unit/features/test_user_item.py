"""User x item and user x category families against batch references."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import numpy as np
import pytest

from schemas.events import Impression, ItemMeta
from streams.features import user_category, user_item
from streams.features.config import TYPE_CODE, FeatureConfig
from streams.features.interactions import INTERACTIONS
from tests.unit.features.eventgen import build_store, family_values, last_ts, make_events, unique

CFG = FeatureConfig()
ITEMS = [f"i{k}" for k in range(8)] + ["never-seen"]
USERS = ["u0", "u1", "u2", "u3", "nobody"]


def ref_user_item(events, u, now):  # type: ignore[no-untyped-def]
    ev = unique(events)
    shown = defaultdict(int)
    for e in ev:
        if isinstance(e, Impression) and e.user_id == u:
            for i in set(e.item_ids):
                shown[i] += 1
    acts = [e for e in ev if isinstance(e, INTERACTIONS) and e.user_id == u]
    out = {n: np.zeros(len(ITEMS)) for n in user_item.NAMES}
    for j, i in enumerate(ITEMS):
        mine = [e for e in acts if e.item_id == i]
        out["seen_before_by_user_item"][j] = float(bool(mine) or shown[i] > 0)
        out["times_seen_by_user_item"][j] = shown[i]
        out["interaction_count_by_user_item"][j] = len(mine)
        if mine:
            last = max(mine, key=lambda e: (e.ts, TYPE_CODE[e.type]))
            out["last_interaction_type_by_user_item"][j] = TYPE_CODE[last.type]
            out["last_interaction_age_s_by_user_item"][j] = (now - last.ts).total_seconds()
        else:
            out["last_interaction_type_by_user_item"][j] = np.nan
            out["last_interaction_age_s_by_user_item"][j] = np.nan
    return out


def ref_user_category(events, u, now_dt, cfg):  # type: ignore[no-untyped-def]
    now, h = now_dt.timestamp(), cfg.affinity_half_life_s
    ev = unique(events)
    cats = {e.item_id: list(dict.fromkeys(e.categories)) for e in ev if isinstance(e, ItemMeta)}
    aff: dict[str, float] = defaultdict(float)
    total = 0.0
    for e in ev:
        if isinstance(e, INTERACTIONS) and e.user_id == u and cats.get(e.item_id):
            w = cfg.type_weights[e.type] * 2 ** (-(now - e.ts.timestamp()) / h)
            if cfg.type_weights[e.type] > 0:
                total += w
                for c in cats[e.item_id]:
                    aff[c] += w
    top = set(sorted(aff, key=lambda c: (-aff[c], c))[: cfg.top_categories])
    out = {n: np.zeros(len(ITEMS)) for n in user_category.NAMES}
    for j, i in enumerate(ITEMS):
        best = max((aff.get(c, 0.0) for c in cats.get(i, [])), default=0.0)
        out["category_affinity_by_user_item"][j] = best
        out["category_affinity_share_by_user_item"][j] = best / total if total > 0 else np.nan
        out["category_top_match_by_user_item"][j] = float(any(c in top for c in cats.get(i, [])))
    return out


@pytest.mark.parametrize("seed", [21, 22])
def test_user_item_matches_batch_reference(seed: int) -> None:
    events = make_events(seed, n=500)
    store = build_store(events, CFG)
    now = last_ts(events) + timedelta(minutes=5)
    touched = 0.0
    for u in USERS:
        got = family_values(store, user_item.FAMILY, u, ITEMS, now, CFG)
        ref = ref_user_item(events, u, now)
        for name in user_item.NAMES:
            np.testing.assert_allclose(got[name], ref[name], rtol=0, atol=1e-3, equal_nan=True,
                                       err_msg=f"{u} {name}")
        touched += got["interaction_count_by_user_item"].sum() + got["times_seen_by_user_item"].sum()
    assert touched > 0


@pytest.mark.parametrize("seed", [23, 24])
def test_user_category_matches_batch_reference(seed: int) -> None:
    events = make_events(seed, n=500)
    store = build_store(events, CFG)
    now = last_ts(events) + timedelta(hours=2)
    matched = 0.0
    for u in USERS:
        got = family_values(store, user_category.FAMILY, u, ITEMS, now, CFG)
        ref = ref_user_category(events, u, now, CFG)
        for name in user_category.NAMES:
            np.testing.assert_allclose(got[name], ref[name], rtol=1e-9, atol=1e-12, equal_nan=True,
                                       err_msg=f"{u} {name}")
        matched += got["category_top_match_by_user_item"].sum()
    assert matched > 0


def test_last_interaction_is_order_independent() -> None:
    """The packed hmax keeps the latest interaction whatever order events arrive in."""
    events = make_events(25, n=200)
    a = build_store(events, CFG, batch_size=7)
    b = build_store(list(reversed(events[:7])) + list(reversed(events[7:])), CFG, batch_size=50)
    assert a.hashes["user:{u1}:ui"] == b.hashes["user:{u1}:ui"]
