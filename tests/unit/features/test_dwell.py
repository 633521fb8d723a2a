"""Dwell statistics: histogram quantiles and the river sketch against numpy."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.dwell import DwellBuckets, DwellSketch, bucket_bounds, histogram_quantile

B = DwellBuckets()


def test_bucket_edges_are_half_open() -> None:
    edges = B.edges_ms()
    assert B.bucket(0) == 0 and B.bucket(edges[0] - 1e-9) == 0 and B.bucket(edges[0]) == 1
    for k in range(1, B.n - 1):
        lo, hi = bucket_bounds(k, B)
        assert B.bucket(lo) == k and B.bucket(math.nextafter(hi, 0)) == k
    assert B.bucket(1e12) == B.n - 1 and math.isinf(bucket_bounds(B.n - 1, B)[1])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 24 * 3600 * 1000), min_size=1, max_size=300),
       st.sampled_from([0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]))
def test_histogram_quantile_lies_in_the_exact_quantiles_bucket(xs: list[int], q: float) -> None:
    counts = np.zeros(B.n)
    for x in xs:
        counts[B.bucket(x)] += 1
    est = histogram_quantile(counts, q, B)
    exact = float(np.quantile(np.array(xs, dtype=float), q, method="inverted_cdf"))
    lo, hi = bucket_bounds(B.bucket(exact), B)
    assert lo <= est <= hi


def test_histogram_quantile_empty_is_nan() -> None:
    assert math.isnan(histogram_quantile(np.zeros(B.n), 0.5, B))


def test_sketch_matches_numpy_at_every_step() -> None:
    rng = np.random.default_rng(51)
    xs = rng.lognormal(9.5, 1.2, size=4000)
    s = DwellSketch((0.5, 0.9))
    assert s.get().n == 0 and math.isnan(s.get().mean_ms)
    for k, x in enumerate(xs, start=1):
        s.update(x)
        if k % 97 == 0 or k < 5:
            got = s.get()
            assert got.n == k
            np.testing.assert_allclose(got.mean_ms, xs[:k].mean(), rtol=1e-9)
            np.testing.assert_allclose(got.std_ms, xs[:k].std(), rtol=1e-6, atol=1e-9)
    for q, est in s.get().quantiles:  # P-square is approximate: within 5% on 4000 samples
        exact = np.quantile(xs, q)
        assert abs(est - exact) / exact < 0.05, (q, est, exact)


def test_suggest_edges_cover_the_observed_range() -> None:
    rng = np.random.default_rng(52)
    xs = rng.lognormal(9.0, 1.0, size=3000)
    s = DwellSketch((0.01, 0.5, 0.99))
    for x in xs:
        s.update(x)
    b = s.suggest_edges(20)
    assert b.n == 20
    assert abs(b.base_ms - np.quantile(xs, 0.01)) / np.quantile(xs, 0.01) < 0.2
    assert abs(b.edges_ms()[-1] - np.quantile(xs, 0.99)) / np.quantile(xs, 0.99) < 0.2
    assert DwellSketch((0.5,)).suggest_edges(10) == DwellBuckets()
