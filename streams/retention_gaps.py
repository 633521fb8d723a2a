"""Records a topic's retention deleted before the worker applied them.

Offsets within a Kafka partition only grow, but not always by one: a transaction's commit
marker takes an offset too, and a compacted topic drops some.  So a gap between the next
offset the worker expects and the first one it consumes is only a *candidate*.  It is a loss
only up to the partition's log start offset.  The broker no longer holds the records below
that offset, and nothing applied them: the expected offset comes from what this worker
consumed, confirmed by the stored offsets watermark (``streams.keys.WATERMARK``: what any
worker applied).  So :func:`lost_to_retention` counts ``[expected, min(got, log_start))``.

A worker that stays behind its topic for longer than the retention loses records this way.
So does one that was stopped for longer than that.  Kafka then moves the consumer's
out-of-range position to the earliest record it holds, and says nothing.

Pure: no Kafka or Redis import; the worker (``streams.worker``) asks for the watermark and
the log start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol


class HasOffset(Protocol):
    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def topic(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Gap:
    """Offsets ``[expected, got)`` of one partition were never consumed."""

    partition: int
    expected: int  # the next offset this partition should have given
    got: int  # the first offset it gave instead

    def confirmed(self, stored_next: int | None) -> Gap | None:
        """The gap left once the stored watermark (next offset any worker applied) is known:
        another worker may have applied part of it (a rebalance)."""
        start = self.expected if stored_next is None else max(self.expected, stored_next)
        return Gap(self.partition, start, self.got) if start < self.got else None


def lost_to_retention(gap: Gap, log_start: int) -> int:
    """Records of ``gap`` the broker deleted: those below its log start offset."""
    return max(0, min(gap.got, log_start) - gap.expected)


class GapTracker:
    """The next offset expected per partition of one topic (``Record.topic`` tag ``topic``).

    ``seed`` gives a partition's next offset before the first record is seen (the stored
    watermark, after a restart).  Without a seed, the first record of a partition sets it."""

    def __init__(self, topic: str = "") -> None:
        self.topic = topic
        self.next: dict[int, int] = {}
        self._seeded = False

    @property
    def seeded(self) -> bool:
        return self._seeded

    def seed(self, stored_next: Mapping[int, int]) -> None:
        for p, off in stored_next.items():
            if off > self.next.get(p, -1):
                self.next[p] = off
        self._seeded = True

    def observe(self, records: Iterable[HasOffset]) -> list[Gap]:
        """Gaps in ``records`` (in consumed order) and before them; records of other topics are
        skipped.  Repeats and earlier offsets (a re-delivery) are no gap."""
        gaps: list[Gap] = []
        nxt = self.next
        for r in records:
            if r.topic != self.topic:
                continue
            want = nxt.get(r.partition)
            if want is None or r.offset >= want:
                if want is not None and r.offset > want:
                    gaps.append(Gap(r.partition, want, r.offset))
                nxt[r.partition] = r.offset + 1
        return gaps


def parse_watermark(raw: Mapping[str, str] | None) -> dict[int, int]:
    """The stored offsets watermark hash (partition -> next offset) as integers; bad fields are
    skipped."""
    out: dict[int, int] = {}
    for k, v in (raw or {}).items():
        try:
            out[int(k)] = int(v)
        except (TypeError, ValueError):
            continue
    return out
