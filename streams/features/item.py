"""Item features: windowed counts, decayed popularity, smoothed rates, rating, dwell, age.

Writes touch ``item:{i}:*`` keys and the global category-stats hash; see
docs/features.md for every formula.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any, Mapping, Sequence

import numpy as np

from schemas.events import Event, Impression, ItemMeta, Rate, View
from streams.features import keys
from streams.features.config import FeatureConfig, WriteContext, seconds
from streams.features.decay import MAX_EXP, log2_weight, num
from streams.features.family import Column, Family, Raw, ReadKey, by_key, collect, floats, pow2
from streams.features.interactions import INTERACTIONS
from streams.features.windows import count_name, window_count_columns, window_emit, window_reads_many
from streams.store import Read
from streams.writes import Write, WriteSink

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


def _category_emit(out: WriteSink, type_: str, cats: Sequence[str]) -> None:
    out.hincrby(keys.CATEGORY_STATS, type_, 1)
    for c in cats:
        out.hincrby(keys.CATEGORY_STATS, f"{type_}:{c}", 1)


def emit(event: Event, ts: float, cfg: FeatureConfig, ctx: WriteContext, out: WriteSink) -> None:
    if isinstance(event, INTERACTIONS):
        item, t = event.item_id, event.type
        agg = keys.item_agg(item)
        window_emit(out, keys.item_window, item, t, ts, cfg)
        out.hincrby(agg, t, 1)
        out.hmin(agg, "first_seen", ts)
        weight = cfg.type_weights.get(t, 0.0)
        if weight > 0:
            decay, epoch_s = keys.item_decay(item), cfg.epoch_s
            for hl, h in cfg.popularity_half_lives:
                out.zlogadd(decay, f"pop:{hl}", log2_weight(weight, ts, h, epoch_s))
        if t in PRIOR_TYPES:
            _category_emit(out, t, ctx.categories(item))
        if isinstance(event, View):
            d = event.dwell_ms
            out.hincrby(agg, "dwell_n", 1)
            out.hincrby(agg, "dwell_sum_ms", d)
            out.hincrbyfloat(agg, "dwell_sumsq_b2", (d / BINARY_S) ** 2)
            out.hincrby(agg, f"dwell_b:{cfg.dwell_buckets.bucket(d)}", 1)
            if d >= cfg.long_view_ms:
                out.hincrby(agg, "dwell_long", 1)
        elif isinstance(event, Rate):
            out.hincrby(agg, "rating_sum", event.rating)
            out.hincrby(agg, "rating_n", 1)
    elif isinstance(event, Impression):
        for item in dict.fromkeys(event.item_ids):
            agg = keys.item_agg(item)
            out.hincrby(agg, "impression", 1)
            out.hmin(agg, "first_seen", ts)
            _category_emit(out, "impression", ctx.categories(item))
    elif isinstance(event, ItemMeta):
        first = min(ts, seconds(event.created_at)) if event.created_at else ts
        cats = list(dict.fromkeys(event.categories))
        out.hset(keys.item_cats(event.item_id), "list", json.dumps(cats))
        out.hmin(keys.item_agg(event.item_id), "first_seen", first)


def writes(event: Event, cfg: FeatureConfig, ctx: WriteContext) -> list[Write]:
    return collect(emit, event, cfg, ctx)


def reads(user_id: str, item_ids: Sequence[str], now: datetime, cfg: FeatureConfig) -> list[Read]:
    out = [Read("hgetall", keys.CATEGORY_STATS)]
    for item, win in zip(item_ids, window_reads_many(keys.item_window, item_ids, seconds(now), cfg)):
        out += win
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


_PARSED: dict[str, tuple[str, ...]] = {}
"""Stored category JSON texts already parsed (bounded; tuples are immutable, so sharing them is safe)."""


def categories_of(found: Mapping[ReadKey, Any], item_ids: Sequence[str]) -> list[tuple[str, ...]]:
    """``item_categories`` of every item (``found`` = ``family.by_key(raw)``); each distinct
    stored JSON text is parsed once (per process)."""
    memo = _PARSED
    if len(memo) > 100_000:
        memo.clear()
    out = []
    for item in item_ids:
        text = (found.get(("hgetall", keys.item_cats(item), ())) or {}).get("list", "[]")
        cats = memo.get(text)
        if cats is None:
            cats = memo[text] = tuple(json.loads(text))
        out.append(cats)
    return out


AGG_FIELDS = ("impression", "click", "implement", "rating_sum", "rating_n", "dwell_n", "dwell_sum_ms",
              "dwell_sumsq_b2", "dwell_long", "first_seen")


def _agg_matrix(aggs: Sequence[dict[str, Any]], fields: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(values [n, len(fields)] with 0 for absent, present mask) of the stored agg hashes;
    only the fields an item actually holds are touched."""
    col = {f: k for k, f in enumerate(fields)}
    nf = len(fields)
    pos: list[int] = []
    vals: list[Any] = []
    for j, agg in enumerate(aggs):
        for f, v in agg.items():
            k = col.get(f)
            if k is not None:
                pos.append(j * nf + k)
                vals.append(v)
    A = np.zeros(len(aggs) * nf, dtype=np.float64)
    present = np.zeros(len(aggs) * nf, dtype=bool)
    if pos:
        A[pos] = floats(vals)
        present[pos] = True
    return A.reshape(len(aggs), nf), present.reshape(len(aggs), nf)


def _ratio(num_: Column, den: Column) -> Column:
    """``decay.ratio`` elementwise: num/den, NaN where den <= 0."""
    out: Column = np.full(len(den), math.nan)
    np.divide(num_, den, out=out, where=den > 0)
    return out


def histogram_quantiles(counts: np.ndarray, q: float, cfg: FeatureConfig) -> Column:
    """``dwell.histogram_quantile`` of every row of ``counts`` [n, buckets] (same floats)."""
    n, nb = counts.shape
    out = np.full(n, math.nan)
    total = counts.sum(axis=1)
    rows = np.flatnonzero(total > 0)
    if not len(rows):
        return out
    c = counts[rows]
    rank = np.maximum(0.0, q * total[rows] - 1e-9)
    cum = np.cumsum(c, axis=1)
    # first bucket whose cumulative count reaches the rank, skipping empty buckets
    k = np.argmax((cum >= rank[:, None]) & (c > 0), axis=1)
    r = np.arange(len(rows))
    ck = c[r, k]
    frac = (rank - (cum[r, k] - ck)) / ck
    edges = cfg.dwell_buckets.edges_ms()
    lo = np.array((0.0,) + edges)[k]
    hi = np.array(edges + (math.inf,))[k]
    val = lo.copy()  # the open last bucket: its lower edge
    first = (k == 0) & np.isfinite(hi)
    val[first] = lo[first] + frac[first] * (hi[first] - lo[first])
    mid = (k > 0) & np.isfinite(hi)
    val[mid] = lo[mid] * np.array([math.pow(b, f) for b, f in zip((hi[mid] / lo[mid]).tolist(),
                                                                   frac[mid].tolist())])
    out[rows] = val
    return out


def values(raw: Raw, user_id: str, item_ids: Sequence[str], now: datetime,
           cfg: FeatureConfig) -> dict[str, Column]:
    """All items at once (numpy); equal, float for float, to computing item by item."""
    now_s, n = seconds(now), len(item_ids)
    found = by_key(raw)
    cols: dict[str, Column] = {}
    for (t, w), c in window_count_columns(found, keys.item_window, item_ids, now_s, cfg).items():
        cols[count_name(t, "item", w)] = c
    decays = [dict(found.get(("zrevrange", keys.item_decay(i), (0, -1))) or []) for i in item_ids]
    for hl, h in cfg.popularity_half_lives:
        member = f"pop:{hl}"
        scores = [d.get(member) for d in decays]
        has = np.array([s is not None for s in scores], dtype=bool)
        col = np.zeros(n, dtype=np.float64)
        if has.any():
            x = floats([s for s in scores if s is not None]) - (now_s - cfg.epoch_s) / h
            col[has] = pow2(np.minimum(MAX_EXP, x))
        cols[f"popularity_decayed_by_item_{hl}"] = col
    nb = cfg.dwell_buckets.n
    fields = AGG_FIELDS + tuple(f"dwell_b:{k}" for k in range(nb))
    A, present = _agg_matrix([found.get(("hgetall", keys.item_agg(i), ())) or {} for i in item_ids], fields)
    f = {name: A[:, k] for k, name in enumerate(AGG_FIELDS)}
    cats = categories_of(found, item_ids)
    cstats: dict[str, str] = found.get(("hgetall", keys.CATEGORY_STATS, ())) or {}
    m = cfg.prior_strength
    for t, base, name in (("click", cfg.ctr_prior, "ctr_smoothed_by_item"),
                          ("implement", cfg.implement_prior, "implement_rate_smoothed_by_item")):
        memo: dict[tuple[str, ...], float] = {}
        for ic in cats:
            if ic not in memo:
                memo[ic] = category_prior(cstats, t, ic, base, m)
        prior = np.array([memo[ic] for ic in cats], dtype=np.float64)
        cols[name] = (f[t] + m * prior) / (f["impression"] + m)
    cols["rating_mean_by_item"] = _ratio(f["rating_sum"], f["rating_n"])
    dn = f["dwell_n"]
    mean_s = _ratio(f["dwell_sum_ms"] / 1000.0, dn)
    cols["dwell_mean_s_by_item"] = mean_s
    std = np.full(n, math.nan)
    pos = dn > 0
    if pos.any():
        mean_sq = np.array([x ** 2 for x in mean_s[pos].tolist()], dtype=np.float64)  # as Python's float pow
        var = f["dwell_sumsq_b2"][pos] * SQ_TO_S2 / dn[pos] - mean_sq
        std[pos] = np.sqrt(np.where(var > 0.0, var, 0.0))
    cols["dwell_std_s_by_item"] = std
    hist = A[:, len(AGG_FIELDS):]
    for qn, q in cfg.dwell_quantiles:
        cols[f"dwell_{qn}_s_by_item"] = histogram_quantiles(hist, q, cfg) / 1000.0
    cols["long_view_rate_by_item"] = _ratio(f["dwell_long"], dn)
    seen = present[:, AGG_FIELDS.index("first_seen")]
    cols["age_s_by_item"] = np.where(seen, now_s - f["first_seen"], math.nan)
    return {name: cols[name] for name in names(cfg)}


FAMILY = Family("item", names, emit, reads, values)
