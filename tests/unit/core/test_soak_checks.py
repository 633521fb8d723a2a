"""bench.soak_checks: each soak criterion turns false on its own, and ``passed`` needs them all."""

from __future__ import annotations

import pytest

from bench.soak_checks import soak_checks

GOOD: dict[str, object] = {
    "worker_rss_growth": 0.017, "api_rss_growth": 0.004, "dead_letters": 87, "hostile_injected": 87,
    "hostile_dead_lettered": 87, "hostile_lost_to_retention": 0, "lost_to_retention_records": 0,
    "worker_lost_to_retention_records": 0,
    "unaccounted_after_drain": 0, "lag_events_at_end": 0, "target_events_per_s": 2000.0, "request_errors": 0,
}


def test_a_run_that_kept_up_passes() -> None:
    got = soak_checks(GOOD)
    assert got["passed"] and all(got.values())


@pytest.mark.parametrize("change,check", [
    ({"worker_rss_growth": 0.115}, "worker_rss_under_10pct"),
    ({"api_rss_growth": 0.10}, "api_rss_under_10pct"),
    ({"dead_letters": 51}, "dead_letters_are_the_hostile"),
    ({"dead_letters": 88}, "dead_letters_are_the_hostile"),  # something else was dead-lettered
    ({"dead_letters": 86, "hostile_dead_lettered": 86}, "dead_letters_are_the_hostile"),  # one vanished
    ({"unaccounted_after_drain": 3}, "nothing_unaccounted"),
    ({"worker_lost_to_retention_records": 2}, "worker_counted_the_losses"),
    ({"lag_events_at_end": 4001}, "kept_up"),
    ({"request_errors": 1}, "no_request_errors"),
])
def test_each_criterion_fails_alone(change: dict[str, object], check: str) -> None:
    got = soak_checks({**GOOD, **change})
    assert not got[check] and not got["passed"]
    assert all(v for k, v in got.items() if k not in (check, "passed"))


def test_kept_up_allows_two_seconds_of_the_rate() -> None:
    assert soak_checks({**GOOD, "lag_events_at_end": 4000})["kept_up"]


def test_hostile_records_deleted_unread_fail_only_the_retention_checks() -> None:
    got = soak_checks({**GOOD, "dead_letters": 80, "hostile_dead_lettered": 80, "hostile_lost_to_retention": 7,
                       "lost_to_retention_records": 40, "worker_lost_to_retention_records": 40})
    assert got["dead_letters_are_the_hostile"] and got["worker_counted_the_losses"] and got["nothing_unaccounted"]
    assert not got["nothing_lost_to_retention"] and not got["passed"]


def test_a_missing_figure_fails_its_check() -> None:
    # a run written before a figure existed cannot pass the check that needs it
    older = {k: v for k, v in GOOD.items() if k != "unaccounted_after_drain"}
    got = soak_checks(older)
    assert not got["nothing_unaccounted"] and not got["passed"]


def test_todays_behind_run_fails_although_its_rss_looks_flat() -> None:
    behind = {**GOOD, "worker_rss_growth": 0.02, "lag_events_at_end": 313_253, "dead_letters": 60,
              "hostile_dead_lettered": 60, "unaccounted_after_drain": 1_000}
    got = soak_checks(behind)
    assert got["worker_rss_under_10pct"] and not got["kept_up"] and not got["passed"]
