"""How fast the machine is right now: a fixed probe written into every benchmark's JSON.

The development machines' speed varies from day to day (the same test suite took 245 s one
day and 448 s the next), so a figure from one day cannot be compared with one from another
without knowing how fast each day's machine was.  ``probe`` times two fixed pieces of work in
CPU time (``time.process_time``: time stolen by the host, or spent waiting for a core, is not
counted), best of ``repeats``:

* ``python_loop_ns``: one iteration of a pure-Python integer-add loop, in nanoseconds
  (the interpreter's speed, which the worker, the API and the load generator mostly run at);
* ``numpy_matmul_gflops``: a 256 x 256 float32 matrix product (the vector maths in serving).

It runs before the benchmark starts its processes, so nothing else of the benchmark competes
with it.  Compare benchmark figures across days by the ratio of their probes.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, TypeVar

import numpy as np

LOOPS = 2_000_000
MATMUL_N = 256
MATMUL_REPEATS = 20


def _python_loop(loops: int) -> int:
    s = 0
    for i in range(loops):
        s += i
    return s


def _best(work: Callable[[], object], repeats: int, clock: Callable[[], float]) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        work()
        best = min(best, clock() - t0)
    return best


def probe(loops: int = LOOPS, repeats: int = 3,
          clock: Callable[[], float] = time.process_time) -> dict[str, float]:
    """``{"python_loop_ns", "numpy_matmul_gflops", "probe_loops"}``, best of ``repeats``."""
    if loops < 1 or repeats < 1:
        raise ValueError("loops and repeats must be at least 1")
    loop_s = _best(lambda: _python_loop(loops), repeats, clock)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((MATMUL_N, MATMUL_N), dtype=np.float32)
    b = rng.standard_normal((MATMUL_N, MATMUL_N), dtype=np.float32)

    def matmuls() -> None:
        for _ in range(MATMUL_REPEATS):
            a @ b

    mm_s = _best(matmuls, repeats, clock)
    flops = 2.0 * MATMUL_N ** 3 * MATMUL_REPEATS
    return {
        "python_loop_ns": round(loop_s / loops * 1e9, 2),
        # a clock too coarse to see the work would give 0 s: counted as one nanosecond
        "numpy_matmul_gflops": round(flops / max(mm_s, 1e-9) / 1e9, 2),
        "probe_loops": float(loops),
    }


def with_machine(result: dict[str, object], measured: dict[str, float]) -> dict[str, object]:
    """``result`` with a ``machine`` entry (``measured``: a :func:`probe` taken before the run); nothing else changes."""
    return {**result, "machine": measured}


R = TypeVar("R", bound=Mapping[str, object])


def measured(run: Callable[[], R], take: Callable[[], dict[str, float]] = probe) -> dict[str, object]:
    """``run()``'s result with a ``machine`` entry taken (``take``, :func:`probe`) just before it
    starts, so nothing the benchmark starts competes with the probe."""
    machine = take()
    return with_machine(dict(run()), machine)
