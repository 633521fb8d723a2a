"""What ``streamrec replay`` tells the operator it can no longer read: records below each log start."""

from __future__ import annotations

from datetime import datetime, timezone

from aiokafka import TopicPartition

from streamrec.replay import _not_retained

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
