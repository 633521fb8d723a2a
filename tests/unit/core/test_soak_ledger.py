"""bench.soak_ledger: every record the soak published lands in exactly one place."""

from __future__ import annotations

from bench.soak_ledger import Sent, dead_letter_mark, marks_to_check, reconcile

T = "events.x"
SENT = [
    Sent(0, 0, ("a", "b")),  # applied
    Sent(0, 1, ("c", "d")),  # half applied: unaccounted
    Sent(0, 2, ("e",)),  # nothing applied, below the log start (5): deleted
    Sent(1, 4, ("f", "g")),  # nothing applied, still held (log start 3): unaccounted
    Sent(1, 0, None),  # hostile, dead-lettered
    Sent(1, 1, None, array=True),  # hostile "[...", dead-lettered as its item 0
    Sent(0, 3, None),  # hostile, below the log start: deleted
    Sent(1, 5, None),  # hostile, still held, not dead-lettered: unaccounted
]
MARKED = {"a", "b", "c", f"dlq:{T}:1:0", f"dlq:{T}:1:1:0"}


def test_each_record_is_sorted_by_what_became_of_it() -> None:
    got = reconcile(SENT, T, MARKED.__contains__, {0: 5, 1: 3})
    assert got.as_json() == {
        "records": 8, "events": 7, "records_applied": 1, "events_applied": 3, "hostile_dead_lettered": 2,
        "records_deleted": 2, "events_deleted": 1, "hostile_deleted": 1,
        "records_unaccounted": 3, "events_unaccounted": 3, "hostile_unaccounted": 1,
    }
    # every record in one place, every event in one place
    assert got.records == got.records_applied + got.hostile_dead_lettered + got.records_deleted + got.records_unaccounted
    assert got.events == got.events_applied + got.events_deleted + got.events_unaccounted


def test_a_partly_applied_record_is_never_called_deleted() -> None:
    got = reconcile([Sent(0, 0, ("a", "b"))], T, {"a"}.__contains__, {0: 10})
    assert (got.records_deleted, got.events_unaccounted) == (0, 1)


def test_the_marks_asked_for() -> None:
    assert marks_to_check(SENT[:2] + SENT[4:6], T) == ["a", "b", "c", "d", f"dlq:{T}:1:0", f"dlq:{T}:1:1:0"]
    assert dead_letter_mark(T, Sent(2, 9, None)) == f"dlq:{T}:2:9"
