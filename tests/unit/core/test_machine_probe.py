"""bench.machine: the machine-speed probe every benchmark JSON carries."""

from __future__ import annotations

import math
from typing import Callable, Iterator

import pytest

from bench.machine import MATMUL_N, MATMUL_REPEATS, measured, probe, with_machine


def _clock(durations: list[float]) -> Callable[[], float]:
    """A clock whose consecutive (start, end) readings are ``durations`` apart."""
    def readings() -> Iterator[float]:
        t = 0.0
        for d in durations:
            yield t
            t += d
            yield t
    it = readings()
    return lambda: next(it)


def test_figures_follow_the_timed_durations() -> None:
    # 3 repeats of the loop, then 3 of the matrix products; the best of each counts
    got = probe(loops=1000, repeats=3, clock=_clock([3.0, 1.0, 2.0, 0.4, 0.2, 0.8]))
    assert got["python_loop_ns"] == pytest.approx(1.0 / 1000 * 1e9)
    flops = 2.0 * MATMUL_N ** 3 * MATMUL_REPEATS
    assert got["numpy_matmul_gflops"] == pytest.approx(round(flops / 0.2 / 1e9, 2))
    assert got["probe_loops"] == 1000


def test_a_clock_that_does_not_move_gives_finite_figures() -> None:
    got = probe(loops=10, repeats=1, clock=lambda: 5.0)
    assert got["python_loop_ns"] == 0.0
    assert math.isfinite(got["numpy_matmul_gflops"]) and got["numpy_matmul_gflops"] > 0


def test_real_probe_is_positive_and_finite() -> None:
    got = probe(loops=20_000, repeats=1)
    assert set(got) == {"python_loop_ns", "numpy_matmul_gflops", "probe_loops"}
    assert all(math.isfinite(v) and v > 0 for v in got.values())


@pytest.mark.parametrize("loops,repeats", [(0, 1), (1, 0)])
def test_rejects_empty_work(loops: int, repeats: int) -> None:
    with pytest.raises(ValueError):
        probe(loops=loops, repeats=repeats)


def test_with_machine_adds_only_the_probe() -> None:
    m = {"python_loop_ns": 1.0, "numpy_matmul_gflops": 2.0, "probe_loops": 3.0}
    res = {"events": 5, "ratio": 0.5}
    out = with_machine(res, m)
    assert out == {"events": 5, "ratio": 0.5, "machine": m}
    assert res == {"events": 5, "ratio": 0.5}  # the input is not changed


def test_measured_probes_before_the_run_and_adds_its_figures() -> None:
    order: list[str] = []
    m = {"python_loop_ns": 1.0, "numpy_matmul_gflops": 2.0, "probe_loops": 3.0}

    def take() -> dict[str, float]:
        order.append("probe")
        return m

    def run() -> dict[str, object]:
        order.append("run")
        return {"events": 7}

    assert measured(run, take) == {"events": 7, "machine": m}
    assert order == ["probe", "run"]
