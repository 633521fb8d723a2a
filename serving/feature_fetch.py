"""Candidate features in ONE Redis round trip, in the feature registry's order.

``FeatureFetcher.fetch(user, items, now)`` gathers, in one :meth:`LiveReader.live`
call, the reads of the user-side families (user, user x category), every
candidate's categories and ``user:{u}:ui`` fields, and the item-family reads of
candidates whose item-side row is not cached; it assembles a float32 matrix
whose columns follow ``feature_names(cfg)`` exactly as ``registry.assemble`` does
(tested equal), computing every column with the families' own ``values``.

Item-side features are the same for every user, and computing them is the
costly part, so their rows are shared across requests for ``item_ttl_s``
(``STREAMREC_SERVING_ITEM_FEATURE_TTL_S``, default 60 s; 0 turns this off) in an
:class:`~serving.item_cache.ItemRows` matrix.  Background tasks warm it with the
whole ANN catalogue at start-up (:meth:`warm`) and recompute rows older than 3/4
of the TTL (:meth:`refresh_oldest`), so requests rarely pay for a miss.  User,
user x item, user x category and context features, and every candidate's
categories, are read live on every request.  The age of the item-side row each
candidate used is returned (explain: feature age).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Awaitable, Callable, Sequence, TypeVar

import numpy as np

from serving.item_cache import ItemRows
from serving.live_read import GenericLiveReader, Live, LiveReader, ReadFn
from streams.features import context, user, user_category, user_item
from streams.features import item as item_family
from streams.features import keys as fkeys
from streams.features.config import FeatureConfig
from streams.features.family import RawResults, unique_reads
from streams.features.registry import DEFAULT_CONFIG, FAMILIES, feature_names

T = TypeVar("T")
Bound = Callable[[Awaitable[T]], Awaitable[T]]
_PSEUDO = "\x00"  # item ids never hold control characters: safe names for one item per category set


@dataclass(frozen=True, eq=False)
class Features:
    names: tuple[str, ...]
    matrix: np.ndarray  # float32 (n_items, n_features), NaN = missing
    categories: list[tuple[str, ...]]
    age_s: np.ndarray  # age of the item-side features of each row (0 = read now)
    now: datetime


def parse_categories(cats_text: str | None, meta_text: str | None) -> tuple[str, ...]:
    """Categories from ``item:{i}:cats`` (features) or else ``item:{i}:meta`` (online state)."""
    for text in (cats_text, meta_text):
        if text:
            try:
                got = json.loads(text)
            except ValueError:
                continue
            if isinstance(got, list):
                return tuple(str(c) for c in got)
    return ()


async def _unbounded(aw: Awaitable[T]) -> T:
    return await aw


class FeatureFetcher:
    def __init__(self, read: ReadFn, cfg: FeatureConfig = DEFAULT_CONFIG, item_ttl_s: float = 2.0,
                 max_cached: int = 200_000, live: LiveReader | None = None) -> None:
        if tuple(FAMILIES) != (item_family.FAMILY, user.FAMILY, user_item.FAMILY, user_category.FAMILY,
                               context.FAMILY):
            raise ValueError("serving.feature_fetch assembles the five registry families; update it")
        self._read = read
        self.live = live if live is not None else GenericLiveReader(read)
        self.cfg = cfg
        self.names = feature_names(cfg)
        self.item_ttl_s = item_ttl_s
        self._item_names = item_family.names(cfg)
        self._item_cols = np.array([self.names.index(n) for n in self._item_names])
        self.rows = ItemRows(len(self._item_names), item_ttl_s, max_cached)
        self._cats: dict[tuple[str | None, str | None], tuple[str, ...]] = {}

    def cached_count(self) -> int:
        return len(self.rows)

    def _item_block(self, raw: RawResults, items: Sequence[str], now: datetime) -> np.ndarray:
        fresh = item_family.FAMILY.values(raw, "", items, now, self.cfg)
        return np.column_stack([fresh[name] for name in self._item_names]).astype(np.float32)

    async def warm(self, items: Sequence[str], now: datetime) -> int:
        """Compute and cache the item-side rows of ``items`` (one round trip), e.g. the whole catalogue."""
        if self.item_ttl_s <= 0 or not items:
            return 0
        items = list(dict.fromkeys(items))
        reads = unique_reads(item_family.FAMILY.reads("", items, now, self.cfg))
        raw = RawResults(reads, await self._read(reads))
        self.rows.put(items, self._item_block(raw, items, now), now.timestamp())
        return len(items)

    async def refresh_oldest(self, now: datetime, batch: int = 100, older_than: float = 0.75) -> int:
        """Recompute (one round trip) up to ``batch`` cached rows older than ``older_than`` x TTL."""
        if self.item_ttl_s <= 0:
            return 0
        return await self.warm(self.rows.oldest(now.timestamp(), self.item_ttl_s * older_than, batch), now)

    def _categories(self, live: Live) -> list[tuple[str, ...]]:
        memo = self._cats
        if len(memo) > 100_000:
            memo.clear()
        out = []
        for key in zip(live.cats, live.meta):
            got = memo.get(key)
            if got is None:
                got = memo[key] = parse_categories(*key)
            out.append(got)
        return out

    async def fetch(self, user_id: str, items: Sequence[str], now: datetime,
                    bound: Bound[Live] | None = None) -> Features:
        """``bound`` wraps the one round trip (e.g. the serving latency budget)."""
        cfg, n, now_s = self.cfg, len(items), now.timestamp()
        slots, miss_at = self.rows.lookup(items, now_s)
        misses = [items[j] for j in miss_at]
        user_reads = user.reads(user_id, (), now, cfg) + user_category.reads(user_id, (), now, cfg)
        reads = unique_reads(user_reads + (item_family.reads(user_id, misses, now, cfg) if misses else []))
        live = await (bound or _unbounded)(self.live.live(reads, items, user_id))
        raw = RawResults(reads, live.generic)
        X = np.empty((n, len(self.names)), dtype=np.float32)
        col = {name: k for k, name in enumerate(self.names)}
        for fam in (user, context):
            for name, v in fam.values(raw, user_id, items, now, cfg).items():
                X[:, col[name]] = v
        ui_read = user_item.reads(user_id, items, now, cfg)[0]
        ui_raw = RawResults([ui_read], [live.ui if live.ui is not None else [None] * (3 * n)])
        for name, v in user_item.values(ui_raw, user_id, items, now, cfg).items():
            X[:, col[name]] = v
        self._user_category(X, col, raw, user_id, live, now)
        age = np.zeros(n, dtype=np.float64)
        hit = slots >= 0
        if hit.any():
            X[np.ix_(hit, self._item_cols)] = self.rows.rows[slots[hit]]
            age[hit] = now_s - self.rows.at[slots[hit]]
        if misses:
            block = self._item_block(raw, misses, now)
            X[np.ix_(np.asarray(miss_at), self._item_cols)] = block
            self.rows.put(misses, block, now_s)
        return Features(self.names, X, self._categories(live), age, now)

    def _user_category(self, X: np.ndarray, col: dict[str, int], raw: RawResults, user_id: str, live: Live,
                       now: datetime) -> None:
        """user x category features, computed once per distinct stored category list (as the family does)."""
        distinct: dict[str | None, int] = {}
        where = np.fromiter((distinct.setdefault(c, len(distinct)) for c in live.cats), dtype=np.int64,
                            count=len(live.cats))
        pseudo = [f"{_PSEUDO}{k}" for k in range(len(distinct))]
        view = RawResults((), ())
        view.by_key = dict(raw.by_key)
        view.by_key.update({("hgetall", fkeys.item_cats(p), ()): {} if c is None else {"list": c}
                            for p, c in zip(pseudo, distinct)})
        got = user_category.values(view, user_id, pseudo, now, self.cfg)
        for name, v in got.items():
            X[:, col[name]] = v[where] if len(where) else v[:0]
