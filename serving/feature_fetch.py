"""Candidate features in ONE Redis round trip, in the feature registry's order.

``FeatureFetcher.fetch(user, items, now)`` gathers, in one :meth:`LiveReader.live`
call, the reads of the user-side families (user, user x category), the
candidates' ``user:{u}:ui`` fields, the categories of candidates whose categories
are not cached, and the item-family reads of candidates whose item-side row is
not cached; it assembles a float32 matrix
whose columns follow ``feature_names(cfg)`` exactly as ``registry.assemble`` does
(tested equal), computing every column with the families' own ``values``.

Item-side features are the same for every user, and computing them is the
costly part, so their rows are shared across requests for ``item_ttl_s``
(``STREAMREC_SERVING_ITEM_FEATURE_TTL_S``, default 60 s; 0 turns this off) in an
:class:`~serving.item_cache.ItemRows` matrix.  Background tasks warm it with the
whole ANN catalogue at start-up (:meth:`warm`) and recompute rows older than 3/4
of the TTL (:meth:`refresh_oldest`), so requests rarely pay for a miss.  The
item's category list (``item:{i}:cats``) is read with its row and cached with it,
as a :class:`CategorySets` id; an item without a stored list is read live on every
request (so its first ``ItemMeta`` shows at once).  User, user x item, user x
category and context features are read live on every request.  The age of the item-side row each
candidate used is returned (explain: feature age).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
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
    age_s: np.ndarray  # age of the item-side features of each row (0 = read now)
    now: datetime
    category_ids: np.ndarray  # (n_items,) id of each row's categories in ``category_sets``
    category_sets: "CategorySets"

    @cached_property
    def categories(self) -> list[tuple[str, ...]]:
        """Each row's categories (built when first asked for: filters, or MMR over multi-category items)."""
        return self.category_sets.tuples(self.category_ids)


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
        first = int(self._item_cols[0]) if len(self._item_cols) else 0
        contiguous = np.array_equal(self._item_cols, np.arange(first, first + len(self._item_cols)))
        # the item family's columns as a slice when they are adjacent (they are: the registry lists it first),
        # so the cached rows are copied in with a slice assignment instead of an np.ix_ scatter
        self._item_span: slice | np.ndarray = slice(first, first + len(self._item_cols)) if contiguous \
            else self._item_cols
        self._col = {name: k for k, name in enumerate(self.names)}
        self.rows = ItemRows(len(self._item_names), item_ttl_s, max_cached)
        self.sets = CategorySets()
        self._parsed: dict[tuple[str | None, str | None], tuple[int, int]] = {}
        self._pseudo: tuple[list[str], dict[tuple[str, str, tuple[()]], dict[str, str]]] | None = None

    def cached_count(self) -> int:
        return len(self.rows)

    def _item_block(self, raw: RawResults, items: Sequence[str], now: datetime) -> np.ndarray:
        fresh = item_family.FAMILY.values(raw, "", items, now, self.cfg)
        return np.column_stack([fresh[name] for name in self._item_names]).astype(np.float32)

    async def warm(self, items: Sequence[str], now: datetime) -> int:
        """Compute and cache the item-side rows of ``items`` (one round trip), e.g. the whole catalogue,
        with the category set read with them (``item:{i}:cats``)."""
        if self.item_ttl_s <= 0 or not items:
            return 0
        items = list(dict.fromkeys(items))
        reads = unique_reads(item_family.FAMILY.reads("", items, now, self.cfg))
        raw = RawResults(reads, await self._read(reads))
        found = raw.by_key
        tags = [self.sets.cacheable((found.get(("hgetall", fkeys.item_cats(i), ())) or {}).get("list"))
                for i in items]
        self.rows.put(items, self._item_block(raw, items, now), now.timestamp(), tags)
        return len(items)

    async def refresh_oldest(self, now: datetime, batch: int = 100, older_than: float = 0.75) -> int:
        """Recompute (one round trip) up to ``batch`` cached rows older than ``older_than`` x TTL."""
        if self.item_ttl_s <= 0:
            return 0
        return await self.warm(self.rows.oldest(now.timestamp(), self.item_ttl_s * older_than, batch), now)

    def _parse(self, cats_text: str | None, meta_text: str | None) -> tuple[int, int]:
        """(set id of the feature categories -- ``item:{i}:cats`` as the item family reads them --, set id
        of the categories filters and MMR use -- those, else ``item:{i}:meta``'s)."""
        key = (cats_text, meta_text)
        got = self._parsed.get(key)
        if got is None:
            if len(self._parsed) > 100_000:
                self._parsed.clear()
            feature = tuple(json.loads(cats_text if cats_text is not None else "[]"))
            got = self._parsed[key] = (self.sets.id(feature), self.sets.id(parse_categories(cats_text, meta_text)))
        return got

    async def fetch(self, user_id: str, items: Sequence[str], now: datetime,
                    bound: Bound[Live] | None = None, rows: np.ndarray | None = None,
                    catalogue: Sequence[str] | None = None) -> Features:
        """``bound`` wraps the one round trip (e.g. the serving latency budget); ``rows``: the items' rows in
        ``catalogue`` (-1: not in it), when the caller has them (the item-row cache is then looked up by row)."""
        cfg, n, now_s, col = self.cfg, len(items), now.timestamp(), self._col
        if rows is not None and catalogue is not None:
            slots, miss_at = self.rows.lookup_rows(items, rows, catalogue, now_s)
        else:
            slots, miss_at = self.rows.lookup(items, now_s)
        misses = [items[j] for j in miss_at]
        hit = slots >= 0
        feature_set = np.full(n, -1, dtype=np.int64)
        feature_set[hit] = self.rows.tag[slots[hit]]
        need = np.flatnonzero(feature_set < 0).tolist()  # misses and items whose categories are not cached
        user_reads = user.reads(user_id, (), now, cfg) + user_category.reads(user_id, (), now, cfg)
        reads = unique_reads(user_reads + (item_family.reads(user_id, misses, now, cfg) if misses else []))
        live = await (bound or _unbounded)(self.live.live(reads, items, user_id, [items[j] for j in need]))
        raw = RawResults(reads, live.generic)
        filter_set = feature_set.copy()
        for j, c, m in zip(need, live.cats, live.meta):
            feature_set[j], filter_set[j] = self._parse(c, m)
        X = np.empty((n, len(self.names)), dtype=np.float32)
        one = items[:1]  # user and context columns are the same for every candidate
        for fam in (user, context):
            for name, v in fam.values(raw, user_id, one, now, cfg).items():
                X[:, col[name]] = v[0] if n else 0.0
        self._user_item(X, user_id, items, live, now)
        self._user_category(X, raw, user_id, feature_set, now)
        age = np.zeros(n, dtype=np.float64)
        if hit.any():
            got = slots[hit]
            at: slice | np.ndarray = slice(None) if len(got) == n else np.flatnonzero(hit)
            self._put_item_block(X, at, self.rows.rows[got])
            age[hit] = now_s - self.rows.at[got]
        if misses:
            block = self._item_block(raw, misses, now)
            self._put_item_block(X, np.asarray(miss_at, dtype=np.int64), block)
            text = dict(zip(need, live.cats))
            tags = [self.sets.cacheable(text[j]) for j in miss_at]
            self.rows.put(misses, block, now_s, tags)
        return Features(self.names, X, age, now, filter_set, self.sets)

    def _put_item_block(self, X: np.ndarray, rows: slice | np.ndarray, block: np.ndarray) -> None:
        """``X[rows, item columns] = block``."""
        if isinstance(self._item_span, slice):
            X[rows, self._item_span] = block
        elif isinstance(rows, slice):
            X[:, self._item_span] = block
        else:
            X[np.ix_(rows, self._item_span)] = block

    def _user_item(self, X: np.ndarray, user_id: str, items: Sequence[str], live: Live, now: datetime) -> None:
        """user x item columns by the family's own ``values``: on the candidates the user's hash knows,
        and the family's value for an absent item everywhere else."""
        cfg, col = self.cfg, self._col
        for name, v in user_item.values(RawResults((), ()), user_id, [_PSEUDO], now, cfg).items():
            X[:, col[name]] = v[0]
        if not live.ui:
            return
        at = [j for j, i in enumerate(items) if i in live.ui]
        known = [items[j] for j in at]
        got = [v for i in known for v in live.ui[i]]
        part = user_item.values(RawResults(user_item.reads(user_id, known, now, cfg), [got]), user_id, known, now, cfg)
        rows = np.asarray(at, dtype=np.int64)
        for name, v in part.items():
            X[rows, col[name]] = v

    def _user_category(self, X: np.ndarray, raw: RawResults, user_id: str, feature_set: np.ndarray,
                       now: datetime) -> None:
        """user x category features, computed once per distinct category set (as the family does)."""
        present = np.zeros(len(self.sets.sets), dtype=bool)
        present[feature_set] = True
        distinct = np.flatnonzero(present)
        remap = np.zeros(len(present), dtype=np.int64)
        remap[distinct] = np.arange(len(distinct))
        where = remap[feature_set]
        names, found = self._pseudo_items()
        view = RawResults((), ())
        view.by_key = {**found, **raw.by_key}  # the pseudo keys hold a control character: no clash
        got = user_category.values(view, user_id, [names[c] for c in distinct.tolist()], now, self.cfg)
        for name, v in got.items():
            X[:, self._col[name]] = v[where] if len(where) else v[:0]


    def _pseudo_items(self) -> tuple[list[str], dict[tuple[str, str, tuple[()]], dict[str, str]]]:
        """One pseudo item per category set (its id as name) and its ``item:{i}:cats`` read result, kept
        until a new set appears (sets are never removed or changed)."""
        sets = self.sets
        if self._pseudo is None or len(self._pseudo[0]) != len(sets.sets):
            names = [f"{_PSEUDO}{k}" for k in range(len(sets.sets))]
            self._pseudo = (names, {("hgetall", fkeys.item_cats(p), ()): {"list": sets.json(k)}
                                    for k, p in enumerate(names)})
        return self._pseudo


class CategorySets:
    """Distinct category tuples, each given a small integer id once (per process); id 0 is ``()``.
    ``single[k]`` is a code of set ``k``'s one distinct category (-1: none, -2: several), for MMR."""

    def __init__(self) -> None:
        self.sets: list[tuple[str, ...]] = [()]
        self._ids: dict[tuple[str, ...], int] = {(): 0}
        self._json: list[str] = ["[]"]
        self._vocab: dict[str, int] = {}
        self.single = np.full(64, -1, dtype=np.int64)

    def id(self, cats: tuple[str, ...]) -> int:
        got = self._ids.get(cats)
        if got is None:
            got = self._ids[cats] = len(self.sets)
            self.sets.append(cats)
            self._json.append(json.dumps(list(cats)))
            if got >= len(self.single):
                self.single = np.concatenate([self.single, np.full(len(self.single), -1, dtype=np.int64)])
            distinct = set(cats)
            self.single[got] = -1 if not distinct else (
                self._vocab.setdefault(cats[0], len(self._vocab)) if len(distinct) == 1 else -2)
        return got

    def single_codes(self, ids: np.ndarray) -> np.ndarray | None:
        """The one category code of each set in ``ids`` (-1: none), or None if one has several."""
        codes = self.single[ids]
        return None if (codes == -2).any() else codes

    def json(self, set_id: int) -> str:
        return self._json[set_id]

    def tuples(self, ids: np.ndarray) -> list[tuple[str, ...]]:
        sets = self.sets
        return [sets[k] for k in ids.tolist()]

    def cacheable(self, cats_text: str | None) -> int:
        """The set id of a stored ``item:{i}:cats`` list when it is one (JSON list of strings), else -1:
        such an item's categories are read live (``item:{i}:meta`` may hold them, or they are not known yet)."""
        if not cats_text or cats_text[0] != "[":
            return -1
        try:
            got = json.loads(cats_text)
        except ValueError:
            return -1
        if not isinstance(got, list) or not all(isinstance(c, str) for c in got):
            return -1
        return self.id(tuple(got))
