"""LambdaRank training on a synthetic problem with a known answer, NDCG, and backfilled groups."""

from __future__ import annotations

import numpy as np
import pytest

from offline.group_split import time_split
from offline.ranker_train import LambdaRankParams, backfill_groups, train_lambdarank
from offline.ranking_metrics import ndcg_at_k
from serving.ranker import LightGBMRanker

NAMES = ["signal", "noise_a", "noise_b"]


def _synthetic(n_groups: int = 120, size: int = 25, seed: int = 0) -> tuple[np.ndarray, ...]:
    """label = f(feature0) exactly: graded 0..3 by quartile of ``signal``."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 1.0, size=(n_groups * size, 3))
    y = np.floor(X[:, 0] * 4).astype(int)
    groups = np.repeat(np.arange(n_groups), size)
    times = groups * 60.0 + 1_700_000_000.0
    perm = rng.permutation(groups.size)  # rows arrive unsorted; the trainer must group them
    return X[perm], y[perm], groups[perm], times[perm]


@pytest.fixture(scope="module")
def trained():  # type: ignore[no-untyped-def]
    X, y, g, t = _synthetic()
    params = LambdaRankParams(num_boost_round=80, early_stopping_rounds=10, num_threads=1, min_data_in_leaf=10)
    return train_lambdarank(X, y, g, t, NAMES, params), (X, y, g, t)


def test_reaches_high_validation_ndcg_and_ranks_by_feature0(trained) -> None:  # type: ignore[no-untyped-def]
    model, (X, y, g, t) = trained
    assert set(model.metrics) == {"ndcg@5", "ndcg@10", "ndcg@20"}
    assert model.metrics["ndcg@10"] > 0.95
    for key, value in model.metrics.items():  # our own NDCG agrees with LightGBM's
        assert model.check_metrics[key] == pytest.approx(value, abs=1e-6)
    gain = model.feature_importance["gain"]
    assert max(gain, key=gain.get) == "signal"
    # the right answer: score increases with the label band of feature0, whatever the noise
    ranker = LightGBMRanker.from_string(model.model_text(), version="t")
    rng = np.random.default_rng(9)
    for _ in range(20):
        grid = np.tile(rng.uniform(0.0, 1.0, size=(1, 3)), (4, 1))
        grid[:, 0] = [0.125, 0.375, 0.625, 0.875]  # the middle of each label band
        assert np.all(np.diff(ranker.score(grid)) > 0.0)


def test_validation_is_the_latest_groups_and_curves_are_recorded(trained) -> None:  # type: ignore[no-untyped-def]
    model, (X, y, g, t) = trained
    assert model.n_train_groups + model.n_valid_groups == 120
    assert model.n_valid_groups == 24
    valid_times = t[model.valid_rows]
    train_mask = np.ones(t.size, dtype=bool)
    train_mask[model.valid_rows] = False
    assert valid_times.min() >= t[train_mask].max()
    assert valid_times.min() == model.split_time
    for ds in ("train", "valid"):
        assert len(model.curves[ds]["ndcg@10"]) >= model.best_iteration
    assert model.curves["valid"]["ndcg@10"][model.best_iteration - 1] == model.metrics["ndcg@10"]


def test_early_stopping_stops_before_the_round_limit() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(1200, 3))
    y = rng.integers(0, 3, size=1200)  # pure noise: validation NDCG cannot keep improving
    g = np.repeat(np.arange(60), 20)
    params = LambdaRankParams(num_boost_round=400, early_stopping_rounds=5, num_threads=1)
    model = train_lambdarank(X, y, g, g.astype(float), NAMES, params)
    assert len(model.curves["valid"]["ndcg@10"]) < 400
    assert model.best_iteration <= len(model.curves["valid"]["ndcg@10"])


def test_training_input_errors_are_clear() -> None:
    X, y, g, t = _synthetic(n_groups=4, size=5)
    with pytest.raises(ValueError, match="feature_names"):
        train_lambdarank(X, y, g, t, NAMES[:2])
    with pytest.raises(ValueError, match="integers"):
        train_lambdarank(X, y + 0.5, g, t, NAMES)
    with pytest.raises(ValueError, match="at least 2 query groups"):
        time_split(np.zeros(5), np.zeros(5), 0.2)


def test_ndcg_known_values() -> None:
    labels = np.array([3, 2, 0, 0, 1])
    g = np.zeros(5, dtype=int)
    assert ndcg_at_k(labels.astype(float), labels, g, 5) == pytest.approx(1.0)
    scores = np.array([0.0, 1.0, 2.0, 3.0, 4.0])  # ranks labels as 1, 0, 0, 2, 3
    dcg = 1 / np.log2(2) + 3 / np.log2(5) + 7 / np.log2(6)
    idcg = 7 / np.log2(2) + 3 / np.log2(3) + 1 / np.log2(4)
    assert ndcg_at_k(scores, labels, g, 5) == pytest.approx(dcg / idcg)
    both = ndcg_at_k(np.r_[scores, [1.0, 2.0]], np.r_[labels, [0, 0]], np.r_[g, [1, 1]], 5)
    assert both == pytest.approx((dcg / idcg + 1.0) / 2)  # a group without relevant rows counts as 1


def _history() -> tuple[np.ndarray, ...]:
    users = np.array(["u1", "u1", "u2", "u2", "u3", "u1"])
    items = np.array(["i1", "i2", "i1", "i3", "i4", "i5"])
    times = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    labels = np.array([3, 1, 2, 0, 1, 2])  # u2/i3 is not a positive
    return users, items, times, labels


def test_backfill_one_positive_plus_negatives_per_group() -> None:
    users, items, times, labels = _history()
    pool = np.array([f"i{j}" for j in range(1, 40)])
    out = backfill_groups(users, items, times, labels, pool, n_negatives=4, seed=7, group_id_start=1000)
    positives = {("u1", "i1"), ("u1", "i2"), ("u2", "i1"), ("u3", "i4"), ("u1", "i5")}
    assert sorted(set(out.group_ids.tolist())) == list(range(1000, 1005))
    for gid in set(out.group_ids.tolist()):
        rows = np.flatnonzero(out.group_ids == gid)
        assert rows.size == 5
        assert (out.labels[rows] > 0).sum() == 1 and out.labels[rows[0]] > 0
        assert len(set(out.item_ids[rows].tolist())) == 5
        assert len(set(out.user_ids[rows].tolist())) == 1 and len(set(out.times[rows].tolist())) == 1
        for r in rows[1:]:
            assert (out.user_ids[r], out.item_ids[r]) not in positives
            assert out.item_ids[r] in set(pool.tolist())
    assert out.labels[out.group_ids == 1000][0] == 3 and out.times[out.group_ids == 1004][0] == 60.0


def test_backfill_is_seeded_and_handles_a_small_pool() -> None:
    users, items, times, labels = _history()
    pool = np.array([f"i{j}" for j in range(1, 40)])
    a = backfill_groups(users, items, times, labels, pool, 4, seed=1)
    b = backfill_groups(users, items, times, labels, pool, 4, seed=1)
    c = backfill_groups(users, items, times, labels, pool, 4, seed=2)
    assert a.item_ids.tolist() == b.item_ids.tolist()
    assert a.item_ids.tolist() != c.item_ids.tolist()
    small = backfill_groups(users, items, times, labels, np.array(["i1", "i2", "i3", "i9"]), 4, seed=0)
    u1_rows = (small.user_ids == "u1") & (small.labels == 0)
    assert set(small.item_ids[u1_rows].tolist()) <= {"i3", "i9"}  # i1, i2 are u1's own positives
    assert (small.group_ids == 0).sum() == 3  # the positive and the only two allowed negatives


def test_ineligible_groups_only_train_and_only_before_the_validation_period() -> None:
    # groups 0..9 eligible at t = 0..9 (rows shuffled); impression-like groups 100..104 at t = 1, 3, 7, 8.5, 20
    g = np.r_[np.repeat(np.arange(10), 3), np.repeat([100, 101, 102, 103, 104], 2)]
    t = np.r_[np.repeat(np.arange(10.0), 3), np.repeat([1.0, 3.0, 7.0, 8.5, 20.0], 2)]
    eligible = g < 100
    perm = np.random.default_rng(1).permutation(g.size)
    g, t, eligible = g[perm], t[perm], eligible[perm]
    split = time_split(g, t, 0.2, eligible)
    # validation: the latest 20 % of the eligible groups only, with the same split as without the others
    assert sorted(set(g[split.valid_rows].tolist())) == [8, 9]
    assert split.split_time == 8.0
    train_groups = set(g[split.train_rows].tolist())
    assert train_groups == set(range(8)) | {100, 101, 102}  # 103 (t 8.5) and 104 (t 20) are in or after it
    assert split.train_sizes.sum() == split.train_rows.size and split.valid_sizes.sum() == split.valid_rows.size
    # rows are contiguous by group, and sizes match the runs of group ids
    runs = np.diff(np.r_[np.flatnonzero(np.r_[True, g[split.train_rows][1:] != g[split.train_rows][:-1]]),
                         split.train_rows.size])
    assert runs.tolist() == split.train_sizes.tolist()
    with pytest.raises(ValueError, match="validation-eligible"):
        time_split(g, t, 0.2, np.zeros(g.size, bool))
