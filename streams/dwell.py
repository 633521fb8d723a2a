"""Dwell-time statistics: deterministic per-item histograms plus a river sketch.

Two pieces, chosen so that Redis state stays a set of commutative counters
(a SIGKILLed worker or a replay must rebuild the same state):

* **Per item, in Redis** (written by ``streams.features.item``): ``dwell_n``,
  ``dwell_sum_ms``, ``dwell_sumsq_s2``, ``dwell_long`` and a histogram over
  fixed log-spaced buckets (``DwellBuckets``, ratio sqrt(2) by default).  Mean
  and standard deviation are exact; quantiles are read off the histogram with
  geometric interpolation inside the bucket, so an estimate always lies in the
  bucket of the exact (inverted-CDF) quantile: relative error < the bucket
  ratio.
* **Global, in the worker** (``DwellSketch``): river's running ``Mean``/``Var``
  and P-square ``Quantile`` sketches over every dwell the worker sees.  River
  objects are not stored in Redis (that would need pickle, and a restarted
  worker would diverge); the sketch is process-local monitoring: it exports
  the live dwell distribution (metrics, logs) and ``suggest_edges`` proposes
  histogram edges / a long-view threshold for the next namespace rebuild.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from river import stats


@dataclass(frozen=True, slots=True)
class DwellBuckets:
    """Fixed log-spaced dwell histogram: bucket k >= 1 holds [base*r^(k-1), base*r^k) ms.

    Bucket 0 holds [0, base); the last bucket is open-ended.  Fixed edges keep
    the histogram a set of commutative counters (see module docstring).
    """

    base_ms: float = 250.0
    log2_ratio: float = 0.5
    n: int = 38

    def edges_ms(self) -> tuple[float, ...]:
        """Upper edges of buckets 0..n-2 (the last bucket has no upper edge)."""
        return _edges(self.base_ms, self.log2_ratio, self.n)

    def bucket(self, dwell_ms: float) -> int:
        return bisect.bisect_right(self.edges_ms(), dwell_ms)


@functools.lru_cache(maxsize=16)
def _edges(base_ms: float, log2_ratio: float, n: int) -> tuple[float, ...]:
    return tuple(base_ms * 2.0 ** (log2_ratio * k) for k in range(n - 1))


def bucket_bounds(k: int, cfg: DwellBuckets) -> tuple[float, float]:
    """[lo, hi) of bucket ``k`` in ms (hi = inf for the last bucket)."""
    edges = cfg.edges_ms()
    lo = 0.0 if k == 0 else edges[k - 1]
    hi = edges[k] if k < len(edges) else math.inf
    return lo, hi


def histogram_quantile(counts: Sequence[float], q: float, cfg: DwellBuckets) -> float:
    """Quantile ``q`` (0 < q <= 1) in ms from bucket counts; NaN if empty.

    Finds the bucket where the cumulative count first reaches ``q * N`` and
    interpolates geometrically inside it (linearly in bucket 0; the lower edge
    for the open last bucket).
    """
    c = np.asarray(counts, dtype=np.float64)
    total = float(c.sum())
    if total <= 0:
        return math.nan
    rank = max(0.0, q * total - 1e-9)  # q*N == integer must not spill over by rounding
    cum = np.cumsum(c)
    k = int(np.searchsorted(cum, rank, side="left"))
    k = min(k, len(c) - 1)
    while c[k] == 0:  # rank == 0 lands on the first non-empty bucket
        k += 1
    before = float(cum[k] - c[k])
    frac = (rank - before) / float(c[k])
    lo, hi = bucket_bounds(k, cfg)
    if math.isinf(hi):
        return lo
    if k == 0:
        return lo + frac * (hi - lo)
    return lo * math.pow(hi / lo, frac)


@dataclass(frozen=True, slots=True)
class DwellSummary:
    n: int
    mean_ms: float
    std_ms: float
    quantiles: tuple[tuple[float, float], ...]


class DwellSketch:
    """Worker-local running dwell statistics with river (update/get verbs).

    >>> s = DwellSketch((0.5,))
    >>> for x in (1000, 2000, 3000):
    ...     s.update(x)
    >>> s.get().mean_ms
    2000.0
    """

    def __init__(self, quantiles: Sequence[float] = (0.5, 0.9, 0.99)) -> None:
        self._mean = stats.Mean()
        self._var = stats.Var(ddof=0)
        self._q = {q: stats.Quantile(q) for q in quantiles}
        self._n = 0

    def update(self, dwell_ms: float) -> None:
        x = float(dwell_ms)
        self._n += 1
        self._mean.update(x)
        self._var.update(x)
        for sketch in self._q.values():
            sketch.update(x)

    def get(self) -> DwellSummary:
        if self._n == 0:
            return DwellSummary(0, math.nan, math.nan, tuple((q, math.nan) for q in self._q))
        qs = tuple((q, _f(s.get())) for q, s in self._q.items())
        return DwellSummary(self._n, float(self._mean.get()), math.sqrt(max(0.0, self._var.get())), qs)

    def suggest_edges(self, n_buckets: int) -> DwellBuckets:
        """Log-spaced buckets covering the observed p1..p99 range in ``n_buckets``.

        Needs the sketch to track 0.01 and 0.99; falls back to the defaults.
        """
        if self._n == 0 or 0.01 not in self._q or 0.99 not in self._q:
            return DwellBuckets()
        lo = max(1.0, _f(self._q[0.01].get()))
        hi = max(lo * 2.0, _f(self._q[0.99].get()))
        return DwellBuckets(base_ms=lo, log2_ratio=math.log2(hi / lo) / max(1, n_buckets - 2),
                            n=n_buckets)


def _f(x: float | None) -> float:
    return math.nan if x is None else float(x)
