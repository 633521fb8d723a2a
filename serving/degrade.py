"""Degraded mode: a circuit breaker around Redis and a cached trending list to answer from.

When Redis fails the breaker opens for ``cooldown_s``; when several round trips
in a row exceed the latency budget it opens for the shorter ``slow_cooldown_s``
(a request whose own round trip overran is answered degraded either way).  A
Redis slowed by the stream worker's atomic applies (tens of milliseconds at a
time) is back long before a second has passed, so a 1 s cooldown turned each
short stall into ~100 degraded answers at 100 requests/s.  While open,
requests answer 200 from the trending list cached in memory (refreshed in the
background while Redis is healthy) with ``"degraded": true`` and touch Redis
not at all.  After the cooldown one
request probes Redis again (half-open); success closes the breaker, so the
service recovers by itself when Redis comes back.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from streams import keys
from streams.store import Read

log = logging.getLogger("streamrec.serving.degrade")

ReadFn = Callable[[Sequence[Read]], Awaitable[list[Any]]]


@dataclass
class Breaker:
    """Opens at once when Redis is unreachable; after ``slow_threshold`` consecutive over-budget
    round trips when it is slow (a single slow call degrades only its own request)."""

    cooldown_s: float = 1.0
    slow_cooldown_s: float = 0.2
    slow_threshold: int = 3
    open_until: float = 0.0
    failures: int = 0
    clock: Callable[[], float] = time.monotonic

    def allow(self) -> bool:
        return self.clock() >= self.open_until

    def failure(self, slow: bool = False) -> None:
        self.failures += 1
        if not slow or self.failures >= self.slow_threshold:
            cooldown = self.slow_cooldown_s if slow else self.cooldown_s
            if self.allow():
                log.warning("entering degraded mode for %.1fs (%s)", cooldown,
                            "Redis over budget" if slow else "Redis unavailable")
            self.open_until = self.clock() + cooldown

    def success(self) -> None:
        if self.failures >= self.slow_threshold or self.open_until:
            log.warning("Redis answers again; leaving degraded mode")
        self.failures = 0
        self.open_until = 0.0


@dataclass(frozen=True, slots=True)
class TrendingItem:
    item_id: str
    score: float  # stored (log2) trending score: order only
    categories: tuple[str, ...]


@dataclass
class TrendingCache:
    depth: int = 500
    items: list[TrendingItem] = field(default_factory=list)
    refreshed_at: float | None = None

    async def refresh(self, read: ReadFn) -> None:
        (top,) = await read([Read("zrevrange", keys.TRENDING, (0, self.depth - 1))])
        metas = await read([Read("hmget", keys.item_meta(i), ("categories",)) for i, _ in top]) if top else []
        out = []
        for (item, score), meta in zip(top, metas):
            cats: tuple[str, ...] = ()
            if meta and meta[0]:
                try:
                    cats = tuple(str(c) for c in json.loads(meta[0]))
                except ValueError:
                    pass
            out.append(TrendingItem(item, score, cats))
        self.items = out
        self.refreshed_at = time.time()
