"""The worker's check for records its topics deleted before they were applied.

Each consumed batch goes through :class:`RetentionWatch` before it is processed.  The pure
rules (candidate gaps, how many of them the broker deleted) are in ``streams.retention_gaps``.
This module makes the two reads those rules need.  Each watched topic's stored offsets
watermark is read from the store: once at start, then again whenever a candidate gap shows
up.  The partition's log start offset comes from the broker, through ``log_start``, and only
for a confirmed gap.

Both topics the worker consumes are watched (:func:`worker_topics`): the events topic, whose
watermark (``watermark``) every apply raises, and the impressions topic, whose watermark
(``impressions_watermark``) rides in the same atomic apply (``streams.batch.offset_marks``).
A loss is logged as an error and added to its topic's ``stats`` field (``lost_to_retention``,
``impressions_lost_to_retention``: Kafka records, not events, since a deleted batch record's
events are unknown), and the topic's watermark is raised past it in the same apply.  The
worker's metrics hash carries both counts.  ``check`` sees a gap when a later record arrives;
``sweep`` (the worker's 10 s timer) finds the records deleted at a partition's tail, after the
last one consumed, when nothing newer comes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable, Sequence

from streams import keys
from streams.retention_gaps import Gap, GapTracker, HasOffset, lost_to_retention, parse_watermark
from streams.store import Guarded, Read, Store
from streams.writes import hincrby, hmax

log = logging.getLogger("streamrec.worker")

LogStart = Callable[[str, int], Awaitable[int]]
"""(topic name, partition) -> the partition's log start offset (the earliest the broker still holds)"""

STAT = "lost_to_retention"
IMPRESSIONS_STAT = "impressions_lost_to_retention"


@dataclass(frozen=True, slots=True)
class Watched:
    tag: str  # ``Record.topic`` of its records ("" = the events topic)
    name: str  # the topic's name (the broker's, and the log's)
    watermark_key: str  # stored hash: partition -> next applied offset
    stat: str  # the ``stats`` field its losses are counted in


def worker_topics(events: str, impressions: str) -> tuple[Watched, Watched]:
    """The two topics a worker consumes, as ``streams.worker`` tags their records."""
    return (Watched("", events, keys.WATERMARK, STAT),
            Watched(impressions, impressions, keys.IMPRESSIONS_WATERMARK, IMPRESSIONS_STAT))


class RetentionWatch:
    def __init__(self, store: Store, log_start: LogStart, topics: Sequence[Watched]) -> None:
        self.store = store
        self.log_start = log_start
        self.topics = tuple(topics)
        self.trackers = {t.tag: GapTracker(t.tag) for t in self.topics}
        self.lost: dict[str, int] = {t.stat: 0 for t in self.topics}  # stats field -> records counted
        self._seeded = False
        self._pending: list[tuple[Watched, Gap]] = []  # seen but not yet judged (a read failed)
        self._lock = asyncio.Lock()  # ``check`` (each batch) and ``sweep`` (a timer) take turns
        self._candidates: dict[tuple[str, int], int] = {}  # tail gaps seen by the last sweep

    async def _stored(self, wanted: Sequence[str]) -> dict[str, dict[int, int]]:
        raw = await self.store.read([Read("hgetall", k) for k in wanted])
        return {k: parse_watermark(v) for k, v in zip(wanted, raw, strict=True)}

    async def _seed(self) -> None:
        if not self._seeded:
            stored = await self._stored([t.watermark_key for t in self.topics])
            for t in self.topics:
                self.trackers[t.tag].seed(stored[t.watermark_key])
            self._seeded = True

    async def check(self, records: Sequence[HasOffset]) -> int:
        """Records of the watched topics deleted before ``records`` (and before any worker applied
        them); counted in ``stats`` and logged.  Returns how many.  If a read or the count's write
        fails, the gaps seen so far are judged again on the next call, so none goes uncounted."""
        async with self._lock:
            await self._seed()
            for t in self.topics:
                self._pending += [(t, g) for g in self.trackers[t.tag].observe(records)]
            return await self._judge()

    async def sweep(self, assigned: Iterable[tuple[str, int, int | None]], idle: bool) -> int:
        """Records deleted at the tail of a partition, with no later record to show the gap (its
        producer stopped).  ``assigned``: (tag, partition, the consumer's position) of each partition
        this worker holds now, so two workers never both count one gap.  A tail gap is counted
        when the consumer's position is at or past the log start, above the next offset expected,
        and that has stood since the previous sweep with the worker ``idle`` (no batch taken since
        then, none in progress): so no record fetched before the deletion can still be on its way
        to ``check``.  The stored watermark confirms it as in ``check``."""
        by_tag = {t.tag: t for t in self.topics}
        async with self._lock:
            await self._seed()
            seen: dict[tuple[str, int], int] = {}
            for tag, partition, position in assigned:
                t = by_tag.get(tag)
                want = self.trackers[tag].next.get(partition) if t is not None else None
                if t is None or want is None or position is None or position <= want:
                    continue  # not watched, nothing known of it yet, or nothing skipped
                start = await self.log_start(t.name, partition)
                if not want < start <= position:
                    continue
                if idle and self._candidates.get((tag, partition)) == want:
                    self._pending.append((t, Gap(partition, want, start)))
                    self.trackers[tag].next[partition] = start
                else:
                    seen[(tag, partition)] = want
            self._candidates = seen
            return await self._judge()

    async def _judge(self) -> int:
        if not self._pending:
            return 0
        stored = await self._stored(sorted({t.watermark_key for t, _ in self._pending}))
        found: list[tuple[Watched, Gap]] = []
        for t, gap in self._pending:
            left = gap.confirmed(stored[t.watermark_key].get(gap.partition))
            if left is None:
                continue
            n = lost_to_retention(left, await self.log_start(t.name, left.partition))
            if n:
                found.append((t, Gap(left.partition, left.expected, left.expected + n)))
        per_stat: dict[str, int] = {}
        past: dict[tuple[str, int], int] = {}  # (watermark key, partition) -> the offset after a loss
        for t, g in found:
            per_stat[t.stat] = per_stat.get(t.stat, 0) + g.got - g.expected
            past[(t.watermark_key, g.partition)] = max(past.get((t.watermark_key, g.partition), 0), g.got)
        if per_stat:
            # the count, and the watermark raised past what was lost (so that no worker counts it
            # again after a restart, and a client waiting for a lost record's offset is let go), at once
            writes = [hincrby(keys.STATS, f, n) for f, n in per_stat.items()]
            writes += [hmax(k, str(p), off) for (k, p), off in sorted(past.items())]
            await self.store.apply([Guarded(None, tuple(writes))])
            for f, n in per_stat.items():
                self.lost[f] += n
        self._pending = []
        for t, g in found:
            log.error(
                "%s partition %d: %d records (offsets %d..%d) were deleted by the topic's retention "
                "before they were applied; the worker is behind by more than the retention or was "
                "stopped for longer (raise STREAMREC_TOPIC_RETENTION_MS or add workers)",
                t.name, g.partition, g.got - g.expected, g.expected, g.got - 1)
        return sum(per_stat.values())
