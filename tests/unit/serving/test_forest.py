"""serving.forest gives LightGBM's own raw scores, bit for bit, or declines the model."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from serving.forest import Forest
from serving.ranker import LightGBMRanker


def _train(X: np.ndarray, y: np.ndarray, rounds: int = 25, **params: Any) -> lgb.Booster:
    base = {"objective": "lambdarank", "verbose": -1, "num_threads": 1, "deterministic": True,
            "min_data_in_leaf": 5, "num_leaves": 15}
    ds = lgb.Dataset(X, y, group=[20] * (len(X) // 20), params={"verbose": -1})
    return lgb.train({**base, **params}, ds, num_boost_round=rounds)


def _data(seed: int, nan_share: float = 0.0, zero_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(800, 6))
    X[:, 3] = np.round(X[:, 3])  # a column with many exact zeros and integer thresholds
    y = np.clip(np.floor(X[:, 0] - X[:, 1] + 1.5), 0, 3).astype(int)
    X[rng.random(X.shape) < nan_share] = np.nan
    X[rng.random(X.shape) < zero_share] = 0.0
    return X, y


def _probe(booster: lgb.Booster, seed: int) -> np.ndarray:
    """Rows whose values sit at, just below and just above every threshold of the model, with NaN,
    0, tiny values (+-1e-35, +-1e-36) and random values mixed in."""
    n = booster.num_feature()
    dump = booster.dump_model()
    cuts: list[list[float]] = [[] for _ in range(n)]

    def walk(node: dict[str, Any]) -> None:
        if "split_index" in node:
            t = float(node["threshold"])
            cuts[node["split_feature"]] += [t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)]
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in dump["tree_info"]:
        walk(tree["tree_structure"])
    tiny = float(np.float32(1e-35))  # LightGBM's zero threshold, and its neighbours
    special = [np.nan, 0.0, -0.0, 1e-35, -1e-35, tiny, -tiny, np.nextafter(tiny, 1), -np.nextafter(tiny, 1), 1e-36,
               -1e-36, 2e-35, np.inf, -np.inf]
    rng = np.random.default_rng(seed)
    rows = 3000
    X = rng.normal(size=(rows, n))
    for f in range(n):
        pool = np.asarray(cuts[f] + special)
        pick = rng.random(rows) < 0.7
        X[pick, f] = rng.choice(pool, size=int(pick.sum()))
    return X


@pytest.mark.parametrize("case", ["plain", "nan", "zero_as_missing", "no_missing", "one_leaf_trees"])
def test_raw_scores_equal_lightgbm_bit_for_bit(case: str) -> None:
    params: dict[str, Any] = {}
    X, y = _data(1)
    if case == "nan":
        X, y = _data(2, nan_share=0.15)
    elif case == "zero_as_missing":
        X, y = _data(3, zero_share=0.2)
        params = {"zero_as_missing": True}
    elif case == "no_missing":
        X, y = _data(4, nan_share=0.1)
        params = {"use_missing": False}
    elif case == "one_leaf_trees":
        params = {"min_data_in_leaf": 400, "min_sum_hessian_in_leaf": 1e9}
    booster = _train(X, y, **params)
    forest = Forest.from_booster(booster)
    assert forest is not None
    probe = _probe(booster, 7)
    for dtype in (np.float64, np.float32):
        m = probe.astype(dtype)
        want = booster.predict(m, raw_score=True, num_threads=1)
        got = forest.predict(m)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want)


def test_the_probe_reaches_both_sides_and_the_missing_paths() -> None:
    """The equality above means something only if the probe rows take different paths."""
    X, y = _data(2, nan_share=0.15)
    booster = _train(X, y)
    leaves = booster.predict(_probe(booster, 7), pred_leaf=True)
    assert all(len(np.unique(leaves[:, t])) > 1 for t in range(leaves.shape[1]) if booster.dump_model()[
        "tree_info"][t]["num_leaves"] > 1)


def test_model_text_round_trip_and_best_iteration_match_predict() -> None:
    X, y = _data(5)
    valid = lgb.Dataset(X[:200], y[:200], group=[20] * 10)
    booster = lgb.train({"objective": "lambdarank", "verbose": -1, "num_threads": 1, "metric": "ndcg",
                         "eval_at": [5], "num_leaves": 15},
                        lgb.Dataset(X[200:], y[200:], group=[20] * 30), num_boost_round=60, valid_sets=[valid],
                        callbacks=[lgb.early_stopping(3, verbose=False)])
    for b in (booster, lgb.Booster(model_str=booster.model_to_string())):
        forest = Forest.from_booster(b)
        assert forest is not None
        probe = _probe(b, 11)
        np.testing.assert_array_equal(forest.predict(probe), b.predict(probe, raw_score=True))


def test_declines_categorical_splits_and_linear_trees() -> None:
    X, y = _data(6)
    X[:, 5] = np.abs(np.round(X[:, 5] * 3))
    y = np.where(np.isin(X[:, 5], [1, 4]), 3, 0)  # only a category split separates these
    ds = lgb.Dataset(X, y, group=[20] * 40, categorical_feature=[5], params={"verbose": -1})
    cat = lgb.train({"objective": "lambdarank", "verbose": -1, "num_threads": 1, "min_data_per_group": 5,
                     "cat_smooth": 1, "min_data_in_leaf": 5}, ds, num_boost_round=10)
    assert any("'decision_type': '=='" in str(t) for t in cat.dump_model()["tree_info"])
    assert Forest.from_booster(cat) is None
    X2, y2 = _data(7)
    linear = _train(X2, y2, rounds=5, linear_tree=True, objective="regression")
    assert Forest.from_booster(linear) is None
    # the ranker keeps LightGBM's predictor for them, with the same scores
    ranker = LightGBMRanker(cat, "v-cat")
    np.testing.assert_array_equal(ranker.score(X[:50]), cat.predict(X[:50], raw_score=True))


def test_wrong_width_is_refused() -> None:
    X, y = _data(1)
    forest = Forest.from_booster(_train(X, y, rounds=3))
    assert forest is not None
    with pytest.raises(ValueError, match=r"expected \(rows, 6\)"):
        forest.predict(np.zeros((2, 5)))


def test_ranker_scores_with_the_forest() -> None:
    X, y = _data(1)
    booster = _train(X, y)
    ranker = LightGBMRanker(booster, "v1")
    assert ranker.compiled
    probe = _probe(booster, 3)
    np.testing.assert_array_equal(ranker.score(probe), booster.predict(probe, raw_score=True))
