"""The retraining trigger: schedule and new-label threshold, with an injected clock."""

from __future__ import annotations

import pytest

from offline.schedule import Trigger, due, parse_period, run_every


def test_parse_period() -> None:
    assert parse_period("1h") == 3600
    assert parse_period("30m") == 1800
    assert parse_period("1.5d") == 1.5 * 86400
    for bad in ("", "1", "h", "-1h", "0m", "1w"):
        with pytest.raises(ValueError, match="e.g. 30m"):
            parse_period(bad)


def test_due_by_schedule_and_by_labels() -> None:
    t = Trigger(period_s=3600, min_new_labels=100)
    assert due(t, 0, None, 0, 0) == "first run"
    assert due(t, 3599, 0, 99, 0) is None
    assert due(t, 3600, 0, 0, 0).startswith("schedule")  # type: ignore[union-attr]
    assert "100 new labels" in due(t, 10, 0, 150, 50)  # type: ignore[operator]
    assert due(Trigger(None, 0), 10**9, 0, 10**6, 0) is None


def test_run_every_runs_on_time_without_sleeping_for_real() -> None:
    now = [0.0]
    labels = [0]
    runs: list[tuple[float, str]] = []

    def sleep(s: float) -> None:
        now[0] += s
        labels[0] += 10

    run_every(Trigger(3600, min_new_labels=1000), lambda why: runs.append((now[0], why)),
              lambda: now[0], sleep, lambda: labels[0], poll_s=60, max_runs=3)
    assert [w.split(" ")[0] for _, w in runs] == ["first", "schedule", "schedule"]
    assert [t for t, _ in runs] == [0, 3600, 7200]


def test_run_every_triggers_on_new_labels_before_the_schedule() -> None:
    now = [0.0]
    labels = [0]

    def sleep(s: float) -> None:
        now[0] += s
        labels[0] += 500

    runs: list[float] = []
    run_every(Trigger(86400, min_new_labels=1000), lambda why: runs.append(now[0]), lambda: now[0], sleep,
              lambda: labels[0], poll_s=60, max_runs=2)
    assert runs == [0, 120]
