"""Property tests for the pure MMR re-ranker (serving.mmr)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.mmr import ItemSimilarity, item_similarity, mmr, normalise_relevance

# Small value sets make ties common, so the tie-break rules are exercised.
_REL_VALUES = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.floats(-1e3, 1e3, allow_nan=False))
_SIM_VALUES = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0.0, 1.0, allow_nan=False))


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    n = draw(st.integers(0, 12))
    rel = np.array(draw(st.lists(_REL_VALUES, min_size=n, max_size=n)), dtype=np.float64)
    upper = np.array(draw(st.lists(_SIM_VALUES, min_size=n * n, max_size=n * n)), dtype=np.float64).reshape(n, n)
    sim = np.maximum(upper, upper.T)  # symmetric, exact
    np.fill_diagonal(sim, 1.0)
    k = draw(st.integers(0, n + 3))
    return rel, sim, k


def _relevance_order(rel: np.ndarray) -> list[int]:
    return sorted(range(len(rel)), key=lambda i: (-rel[i], i))


@settings(max_examples=150, deadline=None)
@given(problems(), st.floats(0.0, 1.0))
def test_count_and_uniqueness(problem: tuple[np.ndarray, np.ndarray, int], lam: float) -> None:
    rel, sim, k = problem
    res = mmr(rel, sim, k, lam)
    assert len(res.indices) == min(k, len(rel))
    assert len(set(res.indices)) == len(res.indices)
    assert all(0 <= i < len(rel) for i in res.indices)
    assert len(res.penalties) == len(res.max_similarity) == len(res.relevance) == len(res.indices)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_lambda_one_is_pure_relevance_order(problem: tuple[np.ndarray, np.ndarray, int]) -> None:
    rel, sim, k = problem
    res = mmr(rel, sim, k, lam=1.0)
    assert list(res.indices) == _relevance_order(rel)[: min(k, len(rel))]
    assert all(p == 0.0 for p in res.penalties)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_lambda_zero_greedily_minimises_max_similarity(problem: tuple[np.ndarray, np.ndarray, int]) -> None:
    """Each pick has the smallest max-similarity to the picks before it; ties by relevance, then index."""
    rel, sim, k = problem
    res = mmr(rel, sim, k, lam=0.0)
    selected: list[int] = []
    for pick in res.indices:
        rest = [j for j in range(len(rel)) if j not in selected]

        def key(j: int) -> tuple[float, float, int]:
            ms = max((sim[j, s] for s in selected), default=0.0)
            return (ms, -rel[j], j)

        assert pick == min(rest, key=key)
        selected.append(pick)


@settings(max_examples=100, deadline=None)
@given(problems(), st.floats(0.0, 1.0))
def test_stable_for_same_input(problem: tuple[np.ndarray, np.ndarray, int], lam: float) -> None:
    rel, sim, k = problem
    first = mmr(rel, sim, k, lam)
    again = mmr(rel.copy(), sim.copy(), k, lam)
    assert first == again
    as_rows = mmr(rel, lambda i: sim[i], k, lam)
    assert as_rows == first


@settings(max_examples=100, deadline=None)
@given(problems(), st.floats(0.0, 1.0))
def test_penalty_is_what_mmr_subtracted(problem: tuple[np.ndarray, np.ndarray, int], lam: float) -> None:
    rel, sim, k = problem
    res = mmr(rel, sim, k, lam)
    norm = normalise_relevance(rel)
    for t, i in enumerate(res.indices):
        expected = max((sim[i, s] for s in res.indices[:t]), default=0.0)
        assert res.max_similarity[t] == expected
        assert res.penalties[t] == pytest.approx((1.0 - lam) * expected)
        assert res.relevance[t] == norm[i]


def test_diversity_beats_near_duplicate() -> None:
    rel = np.array([1.0, 0.99, 0.9, 0.0])
    sim = np.eye(4)
    sim[0, 1] = sim[1, 0] = 0.98
    assert mmr(rel, sim, 3, lam=1.0).indices == (0, 1, 2)
    res = mmr(rel, sim, 3, lam=0.7)
    assert res.indices == (0, 2, 1)
    assert res.penalties == pytest.approx((0.0, 0.0, 0.3 * 0.98))


def test_relevance_is_min_max_normalised_so_scale_does_not_matter() -> None:
    rng = np.random.default_rng(3)
    rel = rng.normal(size=40)
    sim = item_similarity(rng.normal(size=(40, 8)), [("a",)] * 20 + [("b",)] * 20)
    a, b = mmr(rel, sim, 10, 0.6), mmr(rel * 1000.0 + 7.0, sim, 10, 0.6)
    assert a.indices == b.indices
    assert a.relevance == pytest.approx(b.relevance)
    assert normalise_relevance(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]


def test_bad_inputs_are_refused_with_clear_errors() -> None:
    with pytest.raises(ValueError, match="lam"):
        mmr(np.ones(3), np.eye(3), 2, lam=1.5)
    with pytest.raises(ValueError, match=r"expected \(3, 3\)"):
        mmr(np.ones(3), np.eye(2), 2)
    with pytest.raises(ValueError, match="NaN"):
        mmr(np.array([1.0, np.nan]), np.eye(2), 2)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 15), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_item_similarity_range_symmetry_and_lazy_rows(n: int, d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, d))
    vectors[rng.random(n) < 0.2] = 0.0  # some zero vectors
    cats = [tuple(rng.choice(["a", "b", "c", "d"], size=rng.integers(0, 3), replace=False)) for _ in range(n)]
    for vecs in (vectors, None):
        full = item_similarity(vecs, cats)
        assert full.shape == (n, n)
        assert np.all(full >= 0.0) and np.all(full <= 1.0 + 1e-12)
        np.testing.assert_allclose(full, full.T, atol=1e-12)
        lazy = ItemSimilarity.build(vecs, cats)
        np.testing.assert_allclose(np.stack([lazy(i) for i in range(n)]), full, atol=1e-12)


def test_item_similarity_weights() -> None:
    vecs = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    cats = [("drama", "crime"), ("drama",), ("drama", "crime"), ()]
    sim = item_similarity(vecs, cats)
    assert sim[0, 1] == pytest.approx(0.7 * 1.0 + 0.3 * 0.5)  # same direction, Jaccard 1/2
    assert sim[0, 2] == pytest.approx(0.3 * 1.0)  # orthogonal, same categories
    assert sim[0, 3] == pytest.approx(0.0)  # opposite is clipped to 0, no shared categories
    assert item_similarity(None, cats)[0, 1] == pytest.approx(0.5)


def test_module_is_pure() -> None:
    code = "import sys, serving.mmr; bad = {'faust', 'redis', 'fastapi', 'lightgbm', 'torch'} & set(sys.modules); print(sorted(bad))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _jaccard_reference(vectors: np.ndarray | None, cats: list[tuple[str, ...]]) -> np.ndarray:
    n = len(cats)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            a, b = set(cats[i]), set(cats[j])
            jac = len(a & b) / len(a | b) if a | b else 0.0
            if vectors is None:
                out[i, j] = jac
            else:
                u = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-300)
                out[i, j] = 0.7 * min(max(float(u[i] @ u[j]), 0.0), 1.0) + 0.3 * jac
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([(), ("a",), ("b",), ("c",), ("a", "b"), ("b", "a", "b")]), min_size=0, max_size=8),
       st.booleans())
def test_similarity_rows_match_the_definition_single_and_multi_category(cats: list[tuple[str, ...]],
                                                                        with_vectors: bool) -> None:
    rng = np.random.default_rng(len(cats))
    vectors = rng.normal(size=(len(cats), 3)) if with_vectors else None
    sim = ItemSimilarity.build(vectors, cats)
    ref = _jaccard_reference(vectors, cats)
    for i in range(len(cats)):
        np.testing.assert_allclose(sim(i), ref[i], atol=1e-12)
    np.testing.assert_allclose(sim.matrix(), ref.reshape(len(cats), len(cats)), atol=1e-12)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-1, 4), min_size=0, max_size=12), st.booleans(), st.integers(0, 2**31 - 1),
       st.floats(0.0, 1.0))
def test_similarity_from_category_codes_equals_build_from_strings(codes: list[int], with_vectors: bool, seed: int,
                                                                   lam: float) -> None:
    """Serving passes single-category items as integer codes; every row, and MMR's picks, equal ``build``'s."""
    cats = [() if c < 0 else (f"cat{c}",) for c in codes]
    vec = np.random.default_rng(seed).normal(size=(len(codes), 3)) if with_vectors else None
    a, b = ItemSimilarity.build(vec, cats), ItemSimilarity.from_codes(vec, np.array(codes, dtype=np.int64))
    for i in range(len(codes)):
        np.testing.assert_array_equal(a(i), b(i))
    rel = np.random.default_rng(seed + 1).normal(size=len(codes))
    assert mmr(rel, a, 5, lam) == mmr(rel, b, 5, lam)


@settings(max_examples=120, deadline=None)
@given(st.integers(0, 40), st.sampled_from(["codes", "multi", "none"]), st.booleans(), st.integers(0, 2**31 - 1),
       st.floats(0.0, 1.0), st.integers(0, 45))
def test_compiled_loop_over_items_equals_the_loop_over_their_rows(n: int, kind: str, with_vectors: bool, seed: int,
                                                                  lam: float, k: int) -> None:
    """``mmr`` given an ItemSimilarity runs the compiled loop, which computes the rows itself; it picks what
    the numpy loop picks over the same object's rows (``__call__``), with the same similarities (1e-12)."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 4)) if with_vectors else None
    if vectors is not None:
        vectors[rng.random(n) < 0.15] = 0.0  # zero vectors: cosine 0 with everything
    if kind == "codes":
        sim = ItemSimilarity.from_codes(vectors, rng.integers(-1, 4, size=n))
    else:
        pool = ["a", "b", "c"] if kind == "multi" else ["a"]
        sim = ItemSimilarity.build(vectors, [tuple(rng.choice(pool, size=rng.integers(0, 3))) for _ in range(n)])
    rel = np.round(rng.normal(size=n), 1)  # rounded: ties in relevance are common
    compiled = mmr(rel, sim, k, lam)
    by_rows = mmr(rel, lambda i: sim(i), k, lam)
    assert compiled.indices == by_rows.indices
    np.testing.assert_allclose(compiled.max_similarity, by_rows.max_similarity, rtol=0, atol=1e-12)
    np.testing.assert_allclose(compiled.penalties, by_rows.penalties, rtol=0, atol=1e-12)
    assert compiled.relevance == by_rows.relevance
