"""The soak's ledger: where every record it published ended up (pure).

The soak's producer keeps, per Kafka record it sends, the partition and offset the broker gave it
and the event ids inside (none for a hostile record).  After the drain the soak asks Redis which of
them left a mark: an applied event leaves its dedupe mark, a dead-lettered record its
``dlq:{topic}:{partition}:{offset}`` mark (``streams.batch.dead_letter_guard``).  With each
partition's log start at the end, :func:`reconcile` sorts every record into exactly one of:

* applied (every event of it marked) or, for a hostile record, dead-lettered;
* deleted by the topic's retention before it was read: nothing of it marked and its offset below
  the partition's log start.  The worker counts these itself (``stats`` ``lost_to_retention``), so
  the two counts must agree;
* unaccounted: anything else (some events of a record marked and others not, or an unmarked
  record the broker still holds).  After a complete drain this is a silent loss.

So the soak's reconciliation is per record and per event, not a difference of two totals: a
record lost to retention is told apart from one lost without a trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence


@dataclass(frozen=True, slots=True)
class Sent:
    partition: int
    offset: int
    event_ids: tuple[str, ...] | None  # None: a hostile record (must be dead-lettered)
    array: bool = False  # a hostile record whose value starts with "[": dead-lettered as its item 0


@dataclass(frozen=True)
class Reconciled:
    records: int
    events: int
    records_applied: int  # every event of it applied
    events_applied: int
    hostile_dead_lettered: int
    records_deleted: int  # unread, below the log start: lost to retention
    events_deleted: int
    hostile_deleted: int
    records_unaccounted: int
    events_unaccounted: int
    hostile_unaccounted: int

    def as_json(self) -> dict[str, int]:
        return dict(self.__dict__)


def dead_letter_mark(topic: str, r: Sent) -> str:
    """The dedupe id of a dead-lettered record (``streams.batch.dead_letter_guard``): a value that
    starts with "[" is read as a batch record, and its one rejection is item 0."""
    return f"dlq:{topic}:{r.partition}:{r.offset}" + (":0" if r.array else "")


def marks_to_check(sent: Iterable[Sent], topic: str) -> list[str]:
    """Every dedupe id whose mark says what became of ``sent``: its events', or its dead letter's."""
    out: list[str] = []
    for r in sent:
        if r.event_ids is None:
            out.append(dead_letter_mark(topic, r))
        else:
            out.extend(r.event_ids)
    return out


def reconcile(sent: Sequence[Sent], topic: str, marked: Callable[[str], bool],
              log_start: Mapping[int, int]) -> Reconciled:
    """Sort every record of ``sent`` (see the module doc); ``marked``: whether a dedupe id's mark exists."""
    events = rec_ok = applied = dead = rec_del = ev_del = host_del = rec_lost = ev_lost = host_lost = 0
    for r in sent:
        below = r.offset < log_start.get(r.partition, 0)
        if r.event_ids is None:
            if marked(dead_letter_mark(topic, r)):
                dead += 1
            elif below:
                rec_del += 1
                host_del += 1
            else:
                rec_lost += 1
                host_lost += 1
            continue
        events += len(r.event_ids)
        n = sum(1 for e in r.event_ids if marked(e))
        applied += n
        if n == len(r.event_ids):
            rec_ok += 1
            continue
        if n == 0 and below:
            rec_del += 1
            ev_del += len(r.event_ids)
        else:
            rec_lost += 1
            ev_lost += len(r.event_ids) - n
    return Reconciled(len(sent), events, rec_ok, applied, dead, rec_del, ev_del, host_del, rec_lost, ev_lost, host_lost)
