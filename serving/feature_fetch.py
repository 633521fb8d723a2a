"""Candidate features in ONE Redis round trip, in the feature registry's order.

``FeatureFetcher.fetch(user, items, now)`` asks every feature family of
``streams.features.registry`` for its reads, adds each candidate's categories
(``item:{i}:meta``), runs them all in a single :class:`BatchReader` call, and
assembles a float32 matrix whose columns follow ``feature_names(cfg)`` exactly
as ``registry.assemble`` does (tested equal).

Item-side features are the same for every user, and computing them is the
costly part (vectorised over the candidates with numpy: ~10-20 us per item
including the read list; ~0.1 ms per item before), so their rows are shared across
requests for ``item_feature_ttl_s`` (default 60 s; 0 turns this off).  Background
tasks warm the cache with the whole ANN catalogue at start-up (:meth:`warm`) and
recompute rows older than 3/4 of the TTL (:meth:`refresh_oldest`, rate-limited),
so requests rarely pay for a miss.  User, user x item, user x category and
context features are never cached.  User,
user x item, user x category and The age of the item-side row each candidate used is returned (explain: feature age).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable, Callable, Sequence

import numpy as np

from streams import keys as skeys
from streams.features import item as item_family
from streams.features import keys as fkeys
from streams.features.config import FeatureConfig
from streams.features.family import RawResults, ReadKey, unique_reads
from streams.features.registry import DEFAULT_CONFIG, FAMILIES, feature_names
from streams.store import Read

ReadFn = Callable[[Sequence[Read]], Awaitable[list[Any]]]
Entry = tuple[float, np.ndarray, Any, Any, tuple[str, ...]]
"""(computed at, item-family row, item:{i}:cats as read, meta categories as read, parsed categories)"""


@dataclass(frozen=True, eq=False)
class Features:
    names: tuple[str, ...]
    matrix: np.ndarray  # float32 (n_items, n_features), NaN = missing
    categories: list[tuple[str, ...]]
    age_s: np.ndarray  # age of the item-side features of each row (0 = read now)
    now: datetime


def parse_categories(cats_hash: Any, meta_cats: Any) -> tuple[str, ...]:
    """Categories from ``item:{i}:cats`` (features) or else ``item:{i}:meta`` (online state)."""
    for text in ((cats_hash or {}).get("list"), (meta_cats or [None])[0]):
        if text:
            try:
                got = json.loads(text)
            except ValueError:
                continue
            if isinstance(got, list):
                return tuple(str(c) for c in got)
    return ()


class FeatureFetcher:
    def __init__(self, read: ReadFn, cfg: FeatureConfig = DEFAULT_CONFIG, item_ttl_s: float = 2.0,
                 max_cached: int = 200_000) -> None:
        self._read = read
        self.cfg = cfg
        self.names = feature_names(cfg)
        self.item_ttl_s = item_ttl_s
        self.max_cached = max_cached
        self._item_names = item_family.names(cfg)
        self._item_cols = [self.names.index(n) for n in self._item_names]
        self._cache: dict[str, Entry] = {}

    def _cached(self, items: Sequence[str], now_s: float) -> dict[str, Entry]:
        if self.item_ttl_s <= 0:
            return {}
        out = {}
        for i in items:
            hit = self._cache.get(i)
            if hit is not None and now_s - hit[0] <= self.item_ttl_s:
                out[i] = hit
        return out

    def reads(self, user_id: str, items: Sequence[str], misses: Sequence[str], now: datetime) -> list[Read]:
        """What to read: everything, except the item-family keys of items whose rows are cached.

        Categories (``item:{i}:cats``, ``item:{i}:meta``) are always read live, so a new
        ItemMeta shows at once in filters, MMR and the user x category features."""
        return self._reads(user_id, items, misses, now, [self._item_keys(i) for i in items])

    def _reads(self, user_id: str, items: Sequence[str], misses: Sequence[str], now: datetime,
               item_keys: Sequence[tuple[Read, Read]]) -> list[Read]:
        out: list[Read] = []
        for fam in FAMILIES:
            out += fam.reads(user_id, misses if fam is item_family.FAMILY else items, now, self.cfg)
        out += [r for pair in item_keys for r in pair]
        return unique_reads(out)

    @staticmethod
    def _item_keys(i: str) -> tuple[Read, Read]:
        return Read("hgetall", fkeys.item_cats(i)), Read("hmget", skeys.item_meta(i), ("categories",))

    async def refresh_oldest(self, now: datetime, batch: int = 100, older_than: float = 0.75) -> int:
        """Recompute (one round trip) up to ``batch`` cached rows older than ``older_than`` x TTL."""
        if self.item_ttl_s <= 0 or not self._cache:
            return 0
        now_s = now.timestamp()
        cutoff = self.item_ttl_s * older_than
        old = [(v[0], i) for i, v in self._cache.items() if now_s - v[0] > cutoff]
        return await self.warm([i for _, i in sorted(old)[:batch]], now)

    async def warm(self, items: Sequence[str], now: datetime) -> int:
        """Compute and cache the item-side rows of ``items`` (one round trip), e.g. the whole catalogue."""
        if self.item_ttl_s <= 0 or not items:
            return 0
        items = list(dict.fromkeys(items))
        item_keys = [self._item_keys(i) for i in items]
        reads = unique_reads(item_family.FAMILY.reads("", items, now, self.cfg)
                             + [r for pair in item_keys for r in pair])
        raw = RawResults(reads, await self._read(reads))
        fresh = item_family.FAMILY.values(raw, "", items, now, self.cfg)
        block = np.column_stack([fresh[name] for name in self._item_names]).astype(np.float32)
        now_s = now.timestamp()
        for j, (i, (rc, rm)) in enumerate(zip(items, item_keys)):
            cats, meta = raw.by_key.get(_key(rc)), raw.by_key.get(_key(rm))
            self._cache[i] = (now_s, block[j], cats, meta, parse_categories(cats, meta))
        return len(items)

    def cached_count(self) -> int:
        return len(self._cache)

    async def fetch(self, user_id: str, items: Sequence[str], now: datetime,
                    read: ReadFn | None = None) -> Features:
        now_s = now.timestamp()
        cached = self._cached(items, now_s)
        misses = [i for i in items if i not in cached]
        item_keys = [self._item_keys(i) for i in items]
        reads = self._reads(user_id, items, misses, now, item_keys)
        raw = RawResults(reads, await (read or self._read)(reads))  # the one round trip
        found = raw.by_key
        n = len(items)
        X = np.empty((n, len(self.names)), dtype=np.float32)
        cols: dict[str, Any] = {}
        for fam in FAMILIES:
            if fam is not item_family.FAMILY:
                cols.update(fam.values(raw, user_id, items, now, self.cfg))
        for k, name in enumerate(self.names):
            if name in cols:
                X[:, k] = cols[name]
        age = np.zeros(n, dtype=np.float64)
        stored = [(found.get(_key(rc)), found.get(_key(rm))) for rc, rm in item_keys]
        if misses:
            fresh = item_family.FAMILY.values(raw, user_id, misses, now, self.cfg)
            block = np.column_stack([fresh[name] for name in self._item_names]).astype(np.float32)
            if self.item_ttl_s > 0:
                if len(self._cache) + len(misses) > self.max_cached:
                    self._cache = {i: v for i, v in self._cache.items() if now_s - v[0] <= self.item_ttl_s}
                    if len(self._cache) + len(misses) > self.max_cached:
                        self._cache.clear()
            where = {i: j for j, i in enumerate(items)}
            for j, i in enumerate(misses):
                cats, meta = stored[where[i]]
                cached[i] = (now_s, block[j], cats, meta, parse_categories(cats, meta))
                if self.item_ttl_s > 0:
                    self._cache[i] = cached[i]
        if n:
            X[:, self._item_cols] = np.stack([cached[i][1] for i in items])
            age[:] = [now_s - cached[i][0] for i in items]
        out_cats = []
        for i, (c, m) in zip(items, stored):  # parse categories only when their stored text changed
            hit = cached[i]
            if hit[2] == c and hit[3] == m:
                out_cats.append(hit[4])
            else:
                parsed = parse_categories(c, m)
                out_cats.append(parsed)
                if i in self._cache:
                    self._cache[i] = (hit[0], hit[1], c, m, parsed)
        return Features(self.names, X, out_cats, age, now)


def _key(r: Read) -> ReadKey:
    return (r.op, r.key, r.args)
