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
from streams.retention_gaps import GapTracker, HasOffset, lost_to_retention, parse_watermark
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

    async def _stored(self) -> dict[int, int]:
        (raw,) = await self.store.read([Read("hgetall", keys.WATERMARK)])
        return parse_watermark(raw)

    async def check(self, records: Sequence[HasOffset]) -> int:
        """Records of the events topic deleted before ``records`` (and before any worker applied
        them); counted in ``stats`` and logged.  Returns how many."""
        if not self.tracker.seeded:
            self.tracker.seed(await self._stored())
        gaps = self.tracker.observe(records)
        if not gaps:
            return 0
        stored = await self._stored()
        lost = 0
        for gap in gaps:
            left = gap.confirmed(stored.get(gap.partition))
            if left is None:
                continue
            start = await self.log_start(left.partition)
            n = lost_to_retention(left, start)
            if n:
                log.error(
                    "%s partition %d: %d records (offsets %d..%d) were deleted by the topic's retention "
                    "before they were applied; the worker is behind by more than the retention or was "
                    "stopped for longer (raise STREAMREC_TOPIC_RETENTION_MS or add workers)",
                    self.topic_name, left.partition, n, left.expected, left.expected + n - 1)
                lost += n
        if lost:
            self.lost += lost
            await self.store.apply([Guarded(None, (hincrby(keys.STATS, STAT, lost),))])
        return lost
