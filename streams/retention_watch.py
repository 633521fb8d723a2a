"""The worker's check for records its events topic deleted before they were applied.

Each consumed batch goes through :class:`RetentionWatch` before it is processed.  The pure
rules (candidate gaps, how many of them the broker deleted) are in ``streams.retention_gaps``.
This module makes the two reads those rules need.  The stored offsets watermark is read from
the store: once at start, then again whenever a candidate gap shows up.  The partition's log
start offset comes from the broker, through ``log_start``, and only for a confirmed gap.

A loss is logged as an error and added to ``stats`` field ``lost_to_retention`` (Kafka
records, not events: a deleted batch record's events are unknown).  The worker's metrics
hash carries it too.  Records of the impressions topic are not tracked: that topic has no
stored watermark to confirm a gap against.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable, Sequence

from streams import keys
from streams.retention_gaps import Gap, GapTracker, HasOffset, lost_to_retention, parse_watermark
from streams.store import Guarded, Read, Store
from streams.writes import hincrby

log = logging.getLogger("streamrec.worker")

LogStart = Callable[[int], Awaitable[int]]
"""events-topic partition -> its log start offset (the earliest the broker still holds)"""

STAT = "lost_to_retention"


class RetentionWatch:
    def __init__(self, store: Store, log_start: LogStart, topic_name: str) -> None:
        self.store = store
        self.log_start = log_start
        self.topic_name = topic_name
        self.tracker = GapTracker("")  # "" = the events topic (streams.batch.Record.topic)
        self.lost = 0
        self._pending: list[Gap] = []  # gaps seen but not yet judged (a read failed): judged next time

    async def _stored(self) -> dict[int, int]:
        (raw,) = await self.store.read([Read("hgetall", keys.WATERMARK)])
        return parse_watermark(raw)

    async def check(self, records: Sequence[HasOffset]) -> int:
        """Records of the events topic deleted before ``records`` (and before any worker applied
        them); counted in ``stats`` and logged.  Returns how many.  If a read or the count's write
        fails, the gaps seen so far are judged again on the next call, so none goes uncounted."""
        if not self.tracker.seeded:
            self.tracker.seed(await self._stored())
        self._pending += self.tracker.observe(records)
        if not self._pending:
            return 0
        stored = await self._stored()
        found: list[Gap] = []
        for gap in self._pending:
            left = gap.confirmed(stored.get(gap.partition))
            if left is None:
                continue
            n = lost_to_retention(left, await self.log_start(left.partition))
            if n:
                found.append(Gap(left.partition, left.expected, left.expected + n))
        lost = sum(g.got - g.expected for g in found)
        if lost:
            await self.store.apply([Guarded(None, (hincrby(keys.STATS, STAT, lost),))])
            self.lost += lost
        self._pending = []
        for g in found:
            log.error(
                "%s partition %d: %d records (offsets %d..%d) were deleted by the topic's retention "
                "before they were applied; the worker is behind by more than the retention or was "
                "stopped for longer (raise STREAMREC_TOPIC_RETENTION_MS or add workers)",
                self.topic_name, g.partition, g.got - g.expected, g.expected, g.got - 1)
        return lost
