"""The streaming-evaluation protocol's pure parts: plan, queries, exclusions, scores, baselines."""

from __future__ import annotations

import doctest
import math
import subprocess
import sys

import numpy as np
import pytest

import offline.eval_stream_metrics as esm
from offline.eval_stream_metrics import FactorRecommender, HitRate, chunk_queries, plan, popularity, top_k_excluding
from offline.movielens import Rating


def test_doctests() -> None:
    assert doctest.testmod(esm).failed == 0


def test_plan_covers_the_second_half_in_order_without_crossing_retrain_points() -> None:
    p = plan(100_000, 0.5, 0.1, 250)
    assert p.train_end == 50_000
    assert p.retrains == (60_000, 70_000, 80_000, 90_000)
    flat = [i for lo, hi in p.chunks for i in range(lo, hi)]
    assert flat == list(range(50_000, 100_000))
    assert all(hi - lo <= 250 for lo, hi in p.chunks)
    starts = {lo for lo, _ in p.chunks}
    assert set(p.retrains) <= starts  # a retrain always happens between two chunks
    assert not any(lo < r < hi for lo, hi in p.chunks for r in p.retrains)


def test_plan_without_retrains_and_bad_arguments() -> None:
    assert plan(1000, 0.5, 1.0, 100).retrains == ()
    with pytest.raises(ValueError):
        plan(1000, 1.0, 0.1, 100)
    with pytest.raises(ValueError):
        plan(1000, 0.5, 0.1, 0)


def test_queries_are_positives_excluding_everything_rated_before() -> None:
    ev = [Rating("u", "a", 2, 0), Rating("v", "x", 5, 0), Rating("u", "b", 4, 1), Rating("u", "c", 5, 2),
          Rating("v", "y", 3, 3)]
    seen: dict[str, set[str]] = {}
    esm.mark_seen(ev[:1], seen)  # the training prefix
    qs = chunk_queries(ev, 1, 5, seen, min_rating=4)
    assert [(q.position, q.user_id, q.item_id, sorted(q.exclude)) for q in qs] == [
        (1, "v", "x", []), (2, "u", "b", ["a"]), (3, "u", "c", ["a", "b"])]
    assert seen == {"u": {"a", "b", "c"}, "v": {"x", "y"}}
    assert all(q.item_id not in q.exclude for q in qs)


def test_hit_rate_and_ndcg_single_target() -> None:
    h = HitRate(3)
    h.add(["t", "x", "y"], "t")  # rank 0: gain 1
    h.add(["x", "y", "t"], "t")  # rank 2: 1/log2(4) = 0.5
    h.add(["x", "y", "z", "t"], "t")  # beyond k: miss
    h.add([], "t")
    m = h.as_dict()
    assert m["n"] == 4 and m["hr@3"] == pytest.approx(0.5)
    assert m["ndcg@3"] == pytest.approx((1.0 + 0.5) / 4)
    assert h.per_query == [1.0, 0.5, 0.0, 0.0]
    assert HitRate(10).as_dict() == {"hr@10": 0.0, "ndcg@10": 0.0, "n": 0}
    assert math.isclose(HitRate(10).k, 10)


def test_top_k_excluding_and_popularity() -> None:
    assert top_k_excluding(iter(["a", "b", "c"]), frozenset({"a", "c"}), 5) == ["b"]
    ev = [Rating("u", "a", 5, 0), Rating("v", "b", 4, 0), Rating("w", "b", 4, 0), Rating("w", "c", 1, 0)]
    assert popularity(ev, 4) == ["b", "a"]


def test_factor_recommender_matches_brute_force_and_falls_back() -> None:
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(30, 4)).astype(np.float32)
    ids = [f"i{j}" for j in range(30)]
    rec = FactorRecommender({f"u{j}": j for j in range(5)}, ids, users, items, frozenset({"u0", "u1"}), ["i7", "i3", "i9"])
    exclude = frozenset({"i1", "i2", "i5"})
    scores = items @ users[1]
    expected = [ids[j] for j in np.argsort(-scores, kind="stable") if ids[j] not in exclude][:10]
    assert rec.recommend("u1", exclude, 10) == expected
    assert rec.recommend("u4", frozenset({"i3"}), 2) == ["i7", "i9"]  # a row, but no training positive
    assert rec.recommend("nobody", frozenset(), 2) == ["i7", "i3"]


def test_pure_module_imports_no_adapter() -> None:
    code = ("import sys, offline.eval_stream_metrics;"
            "bad = [m for m in ('redis', 'faust', 'aiokafka', 'fastapi', 'uvicorn', 'httpx') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
