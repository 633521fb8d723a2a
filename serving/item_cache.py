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

    def __len__(self) -> int:
        return len(self.slot)

    def lookup(self, items: Sequence[str], now_s: float) -> tuple[np.ndarray, list[int]]:
        """(slot per item, -1 where missing, older than the TTL or computed at a later clock than ``now_s``
        -- a row from the "future" is not point-in-time for this request; positions of those misses)."""
        slots = np.fromiter(map(self.slot.get, items, repeat(-1)), dtype=np.int64, count=len(items))
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
        slots = np.fromiter((self.slot[i] for i in items), dtype=np.int64, count=len(items))
        self.rows[slots] = block
        self.at[slots] = now_s
        self.tag[slots] = -1 if tags is None else tags
        self._order.extend((now_s, i) for i in items)
        return slots

    def clear(self) -> None:
        self.slot.clear()
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
