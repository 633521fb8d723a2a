"""When to retrain: every ``period`` and/or after ``min_new_labels`` new training examples.

Pure decision (:func:`due`) plus a loop (:func:`run_every`) whose clock, sleep,
label counter and job are all parameters, so tests never sleep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_period(text: str) -> float:
    """'90s', '30m', '1h', '1.5h', '1d' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text or "")
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"bad period {text!r}: use a number and a unit, e.g. 30m, 1h or 1d")
    return float(m.group(1)) * UNITS[m.group(2)]


@dataclass(frozen=True)
class Trigger:
    period_s: float | None
    min_new_labels: int = 0  # 0 = off


def due(trigger: Trigger, now: float, last_run: float | None, labels_now: int, labels_at_last_run: int) -> str | None:
    """Why a run is due now (a reason string), or None."""
    if last_run is None:
        return "first run"
    if trigger.period_s is not None and now - last_run >= trigger.period_s:
        return f"schedule ({now - last_run:.0f}s since the last run)"
    if trigger.min_new_labels > 0 and labels_now - labels_at_last_run >= trigger.min_new_labels:
        return f"{labels_now - labels_at_last_run} new labels (threshold {trigger.min_new_labels})"
    return None


def run_every(trigger: Trigger, job: Callable[[str], None], clock: Callable[[], float],
              sleep: Callable[[float], None], count_labels: Callable[[], int],
              poll_s: float = 30.0, max_runs: int | None = None) -> int:
    """Run ``job(reason)`` whenever :func:`due` says so; returns the number of runs (at ``max_runs``)."""
    last: float | None = None
    labels_last = 0
    runs = 0
    while max_runs is None or runs < max_runs:
        labels = count_labels() if trigger.min_new_labels > 0 else 0
        reason = due(trigger, clock(), last, labels, labels_last)
        if reason is None:
            sleep(poll_s)
            continue
        last, labels_last = clock(), labels
        job(reason)
        runs += 1
    return runs
