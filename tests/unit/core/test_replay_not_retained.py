"""What ``streamrec replay`` tells the operator it can no longer read: records below each log start."""

from __future__ import annotations

from datetime import datetime, timezone

from aiokafka import TopicPartition

from streamrec.replay import _maybe_not_retained, _not_retained

TPS = [TopicPartition("ev", 0), TopicPartition("ev", 1), TopicPartition("imp", 0)]
BEGINS = {TPS[0]: 120, TPS[1]: 0, TPS[2]: 7}


def test_from_earliest_everything_below_the_log_starts_is_gone() -> None:
    assert _not_retained(TPS, BEGINS, None) == 127


def test_from_saved_positions_only_what_was_deleted_past_them() -> None:
    pos = {("ev", 0): 100, ("ev", 1): 5, ("imp", 0): 9}  # 100..119 of ev/0 deleted; the rest still held
    assert _not_retained(TPS, BEGINS, pos) == 20
    assert _not_retained(TPS, BEGINS, {("ev", 0): 150}) == 0
    # a partition missing from the positions starts at its log start: what came before is unknown
    assert _not_retained(TPS, BEGINS, {("ev", 1): 0}) == 0


def test_a_time_start_cannot_tell() -> None:
    assert _not_retained(TPS, BEGINS, datetime(2024, 1, 1, tzinfo=timezone.utc)) == 0


def test_a_time_start_flags_partitions_whose_deleted_records_may_have_been_after_it() -> None:
    tps = TPS + [TopicPartition("imp", 1)]
    begins = {**BEGINS, tps[3]: 30}
    ends = {tps[0]: 200, tps[1]: 50, tps[2]: 7, tps[3]: 40}
    # ev/0 starts at its log start (120 > 0: records were deleted, the first kept is after the time);
    # ev/1 deleted nothing; imp/0 has no record after the time (start = end); imp/1 starts past its
    # log start (a record kept is before the time, so what was deleted is older still)
    starts = {tps[0]: 120, tps[1]: 0, tps[2]: 7, tps[3]: 35}
    assert _maybe_not_retained(tps, begins, starts, ends) == (("ev", 0, 120),)
    assert _maybe_not_retained(tps, begins, {**starts, tps[3]: 30}, ends) == (("ev", 0, 120), ("imp", 1, 30))
