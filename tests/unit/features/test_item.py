"""Item family against a batch reference computed directly from the events."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta

import numpy as np
import pytest

from schemas.events import Impression, ItemMeta, Rate, View
from streams.dwell import bucket_bounds
from streams.features import item
from streams.features.config import FeatureConfig
from streams.features.interactions import INTERACTIONS
from tests.unit.features.eventgen import build_store, family_values, last_ts, make_events, unique

CFG = FeatureConfig()
ITEMS = [f"i{k}" for k in range(8)] + ["never-seen"]


def in_window(ts: float, now: float, length: int, bucket: int) -> bool:
    b, nb = math.floor(now / bucket), length // bucket
    return b - nb + 1 <= math.floor(ts / bucket) <= b


def reference(events, now_dt, cfg):  # type: ignore[no-untyped-def]
    now = now_dt.timestamp()
    ev = unique(events)
    cats = {e.item_id: list(dict.fromkeys(e.categories)) for e in ev if isinstance(e, ItemMeta)}
    acts = [e for e in ev if isinstance(e, INTERACTIONS)]
    imps = [e for e in ev if isinstance(e, Impression)]
    ref: dict[str, np.ndarray] = {n: np.zeros(len(ITEMS)) for n in item.names(cfg)}
    # category statistics
    cs: dict[str, float] = defaultdict(float)
    imp_n: dict[str, int] = defaultdict(int)
    for e in imps:
        for i in set(e.item_ids):
            imp_n[i] += 1
            for key in ["impression"] + [f"impression:{c}" for c in cats.get(i, [])]:
                cs[key] += 1
    for e in acts:
        if e.type in ("click", "implement"):
            for key in [e.type] + [f"{e.type}:{c}" for c in cats.get(e.item_id, [])]:
                cs[key] += 1
    m = cfg.prior_strength
    for j, i in enumerate(ITEMS):
        mine = [e for e in acts if e.item_id == i]
        for t in cfg.window_types:
            for w in cfg.windows:
                ref[f"{t}_count_by_item_{w.name}"][j] = sum(
                    1 for e in mine if e.type == t and in_window(e.ts.timestamp(), now, w.length_s, w.bucket_s))
        for hl, h in cfg.popularity_half_lives:
            ref[f"popularity_decayed_by_item_{hl}"][j] = sum(
                cfg.type_weights[e.type] * 2 ** (-(now - e.ts.timestamp()) / h) for e in mine)
        for t, base, name in (("click", cfg.ctr_prior, "ctr_smoothed_by_item"),
                              ("implement", cfg.implement_prior, "implement_rate_smoothed_by_item")):
            glob = (cs[t] + m * base) / (cs["impression"] + m)
            cl = cats.get(i, [])
            prior = (np.mean([(cs[f"{t}:{c}"] + m * glob) / (cs[f"impression:{c}"] + m) for c in cl])
                     if cl else glob)
            hits = sum(1 for e in mine if e.type == t)
            ref[name][j] = (hits + m * prior) / (imp_n[i] + m)
        ratings = [e.rating for e in mine if isinstance(e, Rate)]
        ref["rating_mean_by_item"][j] = np.mean(ratings) if ratings else np.nan
        dwell = np.array([e.dwell_ms for e in mine if isinstance(e, View)], dtype=float)
        ref["dwell_mean_s_by_item"][j] = dwell.mean() / 1000 if len(dwell) else np.nan
        ref["dwell_std_s_by_item"][j] = dwell.std() / 1000 if len(dwell) else np.nan
        ref["long_view_rate_by_item"][j] = (dwell >= cfg.long_view_ms).mean() if len(dwell) else np.nan
        for qn, q in cfg.dwell_quantiles:  # checked separately against bucket bounds
            ref[f"dwell_{qn}_s_by_item"][j] = (
                np.quantile(dwell, q, method="inverted_cdf") if len(dwell) else np.nan)
        touched = [e.ts.timestamp() for e in mine]
        touched += [e.ts.timestamp() for e in imps if i in e.item_ids]
        touched += [min(e.ts, e.created_at or e.ts).timestamp() for e in ev
                    if isinstance(e, ItemMeta) and e.item_id == i]
        ref["age_s_by_item"][j] = now - min(touched) if touched else np.nan
    return ref


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_item_features_match_batch_reference(seed: int) -> None:
    events = make_events(seed)
    store = build_store(events, CFG)
    now = last_ts(events) + timedelta(minutes=7)
    got = family_values(store, item.FAMILY, "u0", ITEMS, now, CFG)
    ref = reference(events, now, CFG)
    assert set(got) == set(item.names(CFG))
    quantiles = {f"dwell_{qn}_s_by_item" for qn, _ in CFG.dwell_quantiles}
    for name in item.names(CFG):
        if name in quantiles:
            continue
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-9, atol=1e-9, equal_nan=True,
                                   err_msg=name)
    for name in quantiles:
        for est, exact in zip(got[name], ref[name]):
            if np.isnan(exact):
                assert np.isnan(est)
                continue
            lo, hi = bucket_bounds(CFG.dwell_buckets.bucket(exact), CFG.dwell_buckets)  # exact in ms
            assert lo <= est * 1000 <= hi, (name, est, exact)
    assert got["click_count_by_item_7d"].sum() > 0 and got["view_count_by_item_1h"].sum() > 0


def test_windows_ignore_buckets_after_now() -> None:
    """Evaluated in the past, windows ignore buckets after the bucket of ``now`` (events
    later than ``now`` inside now's own bucket still count: bucket granularity)."""
    events = make_events(4, burst=False)
    store = build_store(events, CFG)
    times = sorted(e.ts for e in unique(events) if isinstance(e, INTERACTIONS))
    for now in (times[len(times) // 3], times[len(times) // 2] + timedelta(seconds=1)):
        got = family_values(store, item.FAMILY, "u0", ITEMS, now, CFG)
        ref = reference(events, now, CFG)  # in_window drops later buckets
        for t in CFG.window_types:
            for w in CFG.windows:
                name = f"{t}_count_by_item_{w.name}"
                np.testing.assert_array_equal(got[name], ref[name], err_msg=name)
        total_later = sum(1 for e in unique(events) if isinstance(e, INTERACTIONS) and e.ts > now
                          and e.ts - now > timedelta(hours=6))
        assert total_later > 0  # the store really holds events the windows must skip


def test_item_writes_ignore_user_meta_and_bound_window_fields() -> None:
    events = make_events(5, n=300)
    store = build_store(events, CFG)
    nb = max(w.n_buckets for w in CFG.windows)
    for key, fields in store.hashes.items():
        if ":w" in key and key.startswith("item:"):
            assert len(fields) <= len(CFG.window_types) * nb
