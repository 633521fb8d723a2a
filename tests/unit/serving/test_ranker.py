"""LightGBMRanker and HeuristicRanker: loading, scoring, contributions, feature checks."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from serving.ranker import (
    DEFAULT_HEURISTIC,
    FeatureMismatch,
    HeuristicRanker,
    LightGBMRanker,
    Ranker,
    top_contributions,
)

NAMES = ["retrieval_score", "popularity_decayed_by_item_24h", "noise"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    y = np.clip(np.floor(X[:, 0] + 1.5), 0, 3).astype(int)
    ds = lgb.Dataset(X, y, group=[20] * 30, feature_name=NAMES)
    params = {"objective": "lambdarank", "verbose": -1, "num_threads": 1, "deterministic": True, "min_data_in_leaf": 5}
    booster = lgb.train(params, ds, num_boost_round=15)
    path = tmp_path_factory.mktemp("model") / "model.txt"
    booster.save_model(str(path))
    return path


def test_loads_text_model_and_exposes_interface(model_file: Path) -> None:
    ranker = LightGBMRanker.from_file(model_file, version="v1")
    assert isinstance(ranker, Ranker)
    assert ranker.feature_names == tuple(NAMES)
    assert ranker.version == "v1"
    same = LightGBMRanker.from_string(model_file.read_text(), version="v1")
    X = np.random.default_rng(1).normal(size=(50, 3))
    np.testing.assert_array_equal(ranker.score(X), same.score(X))


def test_scores_follow_the_informative_feature(model_file: Path) -> None:
    ranker = LightGBMRanker.from_file(model_file, version="v1")
    X = np.zeros((5, 3))
    X[:, 0] = [-2.0, -1.0, 0.0, 1.0, 2.0]
    s = ranker.score(X)
    assert s.shape == (5,)
    assert np.all(np.diff(s) >= 0.0) and s[-1] > s[0]


def test_contribution_rows_sum_to_raw_score(model_file: Path) -> None:
    ranker = LightGBMRanker.from_file(model_file, version="v1")
    X = np.random.default_rng(2).normal(size=(40, 3))
    contrib = ranker.contributions(X)
    assert contrib.shape == (40, 4)  # one column per feature plus the bias
    np.testing.assert_allclose(contrib.sum(axis=1), ranker.score(X), rtol=1e-9, atol=1e-9)
    assert ranker.score(np.zeros((0, 3))).shape == (0,)


def test_check_features_names_what_is_wrong(model_file: Path) -> None:
    ranker = LightGBMRanker.from_file(model_file, version="v7")
    ranker.check_features(NAMES)
    with pytest.raises(FeatureMismatch) as err:
        ranker.check_features(["retrieval_score", "noise", "click_count_by_item_1h"])
    msg = str(err.value)
    assert "v7" in msg and "missing ['popularity_decayed_by_item_24h']" in msg and "extra ['click_count_by_item_1h']" in msg
    with pytest.raises(FeatureMismatch, match=r"misordered \(position 1: expected 'popularity_decayed_by_item_24h', got 'noise'"):
        ranker.check_features(["retrieval_score", "noise", "popularity_decayed_by_item_24h"])
    with pytest.raises(FeatureMismatch, match="duplicated"):
        ranker.check_features(["retrieval_score", "popularity_decayed_by_item_24h", "noise", "noise"])
    with pytest.raises(FeatureMismatch, match=r"expected \(n_candidates, 3\)"):
        ranker.score(np.zeros((4, 2)))


def test_heuristic_ranker_weighted_sum_on_present_subset() -> None:
    names = ["unknown_feature", "retrieval_score", "popularity_decayed_by_item_24h"]
    ranker = HeuristicRanker(names)
    assert isinstance(ranker, Ranker)
    X = np.array([[100.0, 0.5, np.e - 1.0], [0.0, 0.1, 0.0], [5.0, np.nan, 0.0]])
    w_ret = DEFAULT_HEURISTIC["retrieval_score"].weight
    w_tr = DEFAULT_HEURISTIC["popularity_decayed_by_item_24h"].weight
    expected = np.array([w_ret * 0.5 + w_tr * 1.0, w_ret * 0.1, 0.0])
    np.testing.assert_allclose(ranker.score(X), expected)
    contrib = ranker.contributions(X)
    assert contrib.shape == (3, 4)
    np.testing.assert_allclose(contrib.sum(axis=1), ranker.score(X))
    assert np.all(contrib[:, 0] == 0.0)  # unknown features are ignored
    with pytest.raises(FeatureMismatch, match="heuristic"):
        ranker.check_features(["retrieval_score"])


def test_heuristic_default_names_and_order() -> None:
    ranker = HeuristicRanker()
    assert ranker.feature_names == tuple(DEFAULT_HEURISTIC)
    X = np.zeros((2, len(ranker.feature_names)))
    X[1, ranker.feature_names.index("category_affinity_share_by_user_item")] = 1.0
    assert ranker.score(X)[1] > ranker.score(X)[0]


def test_top_contributions() -> None:
    row = np.array([0.1, -0.9, 0.0, 0.5, 3.0])  # last column is the bias
    assert top_contributions(row, ["a", "b", "c", "d"], n=2) == [("b", -0.9), ("d", 0.5)]


def test_no_pickle_on_the_load_path() -> None:
    import serving.ranker as mod

    source = Path(mod.__file__).read_text()
    assert "import pickle" not in source and "joblib" not in source
