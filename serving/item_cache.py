"""Item-side feature rows shared across requests for a TTL: one float32 matrix, one slot per item.

A request looks its candidates up with one dict lookup each and gathers their
rows with one fancy index (no per-item Python objects); rows older than the TTL
count as misses.  Each slot also keeps a small integer computed with the row
(``tag``: serving stores the id of the item's category set there, -1 = unknown), so
item-side metadata read with the row is cached under the same TTL.  Rows are remembered in the order they were computed, so the
background refresh finds the oldest ones without sorting the whole cache.
Pure: numpy and the standard library only.
"""

from __future__ import annotations

from collections import deque
from itertools import repeat
from typing import Sequence

import numpy as np


class ItemRows:
    def __init__(self, width: int, ttl_s: float, max_items: int = 200_000, capacity: int = 1024) -> None:
        self.width = width
        self.ttl_s = ttl_s
        self.max_items = max_items
        self.slot: dict[str, int] = {}
        self.rows = np.empty((capacity, width), dtype=np.float32)
        self.at = np.zeros(capacity, dtype=np.float64)
        self.tag = np.full(capacity, -1, dtype=np.int64)
        self._order: deque[tuple[float, str]] = deque()  # (computed at, item), oldest first
        self.generation = 0  # changes whenever an item gets a slot or the cache is cleared
        self._by_row: tuple[object, int, np.ndarray] | None = None  # (catalogue ids, generation, slot per row)

    def __len__(self) -> int:
        return len(self.slot)

    def lookup(self, items: Sequence[str], now_s: float) -> tuple[np.ndarray, list[int]]:
        """(slot per item, -1 where missing, older than the TTL or computed at a later clock than ``now_s``
        -- a row from the "future" is not point-in-time for this request; positions of those misses)."""
        slots = np.fromiter(map(self.slot.get, items, repeat(-1)), dtype=np.int64, count=len(items))
        return self._fresh(slots, now_s)

    def lookup_rows(self, items: Sequence[str], rows: np.ndarray, catalogue: Sequence[str],
                    now_s: float) -> tuple[np.ndarray, list[int]]:
        """:meth:`lookup` for items given with their rows in ``catalogue`` (a sequence of ids, e.g. the ANN
        index's; -1: not in it): one array gather instead of a dict lookup per item.  The slot of every
        catalogue row is kept per (catalogue, :attr:`generation`), so it is rebuilt only when an item is
        given a slot or the cache is cleared."""
        by_row = self._by_row
        if by_row is None or by_row[0] is not catalogue or by_row[1] != self.generation:
            table = np.fromiter(map(self.slot.get, catalogue, repeat(-1)), dtype=np.int64, count=len(catalogue))
            by_row = self._by_row = (catalogue, self.generation, table)
        slots = by_row[2][np.where(rows >= 0, rows, 0)] if len(by_row[2]) else np.full(len(rows), -1, np.int64)
        outside = np.flatnonzero(rows < 0)
        if len(outside):
            get = self.slot.get
            slots[outside] = [get(items[j], -1) for j in outside.tolist()]
        return self._fresh(slots, now_s)

    def _fresh(self, slots: np.ndarray, now_s: float) -> tuple[np.ndarray, list[int]]:
        if self.ttl_s <= 0:
            slots[:] = -1
        else:
            at = self.at[slots]
            stale = (slots < 0) | (now_s - at > self.ttl_s) | (at > now_s)
            slots[stale] = -1
        return slots, np.flatnonzero(slots < 0).tolist()

    def put(self, items: Sequence[str], block: np.ndarray, now_s: float,
            tags: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """Store the rows of ``items`` (computed at ``now_s``) and their ``tags`` (default -1);
        returns their slots."""
        if self.ttl_s <= 0:
            return np.full(len(items), -1, dtype=np.int64)
        new = [i for i in dict.fromkeys(items) if i not in self.slot]
        if len(self.slot) + len(new) > self.max_items:
            self.clear()
            new = list(dict.fromkeys(items))
        need = len(self.slot) + len(new)
        if need > len(self.at):
            cap = max(need, 2 * len(self.at))
            rows = np.empty((cap, self.width), dtype=np.float32)
            rows[:len(self.slot)] = self.rows[:len(self.slot)]
            at = np.zeros(cap, dtype=np.float64)
            at[:len(self.slot)] = self.at[:len(self.slot)]
            tag = np.full(cap, -1, dtype=np.int64)
            tag[:len(self.slot)] = self.tag[:len(self.slot)]
            self.rows, self.at, self.tag = rows, at, tag
        for i in new:
            self.slot[i] = len(self.slot)
        if new:
            self.generation += 1
        slots = np.fromiter((self.slot[i] for i in items), dtype=np.int64, count=len(items))
        self.rows[slots] = block
        self.at[slots] = now_s
        self.tag[slots] = -1 if tags is None else tags
        self._order.extend((now_s, i) for i in items)
        return slots

    def clear(self) -> None:
        self.slot.clear()
        self.generation += 1
        self._order.clear()

    def oldest(self, now_s: float, older_than_s: float, limit: int) -> list[str]:
        """Up to ``limit`` items whose rows are older than ``older_than_s``, oldest first."""
        out: dict[str, None] = {}
        order = self._order
        while order and len(out) < limit:
            t, item = order[0]
            if now_s - t <= older_than_s:
                break
            order.popleft()
            s = self.slot.get(item)
            if s is not None and self.at[s] == t:  # else recomputed since: a later entry stands for it
                out[item] = None
        return list(out)
