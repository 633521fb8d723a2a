"""ALS, BPR, EASE and popularity on a block-structured matrix whose right answer is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from offline.interactions import Interactions
from offline.models.als import ALS, ALSConfig
from offline.models.bpr import BPR, BPRConfig, sample_negatives
from offline.models.base import sorted_pair_keys
from offline.models.ease import EASE, EASEConfig
from offline.models.popularity import Popularity

from .conftest import assert_recommends_own_block


def test_als_recommends_within_own_block(block_data: Interactions) -> None:
    model = ALS(ALSConfig(factors=8, regularization=0.1, alpha=5.0, iterations=10)).fit(block_data)
    assert model.user_vectors().shape == (block_data.n_users, 8)
    assert model.item_vectors().dtype == np.float32
    assert_recommends_own_block(model.score(np.arange(block_data.n_users)), block_data)


def test_als_matches_dense_reference_solve(block_data: Interactions) -> None:
    """One user's factors equal the textbook dense solve given the final item factors."""
    cfg = ALSConfig(factors=4, regularization=0.5, alpha=3.0, iterations=3, use_values=True)
    model = ALS(cfg).fit(block_data)
    y = model.item_vectors().astype(np.float64)
    # after the last iteration items were re-solved, so recompute the user solve by hand and
    # compare with one more ALS user step done by the model's own code path
    from offline.models.als import _ConfidenceRows, _solve
    import torch

    rows = _ConfidenceRows(block_data, (cfg.alpha * block_data.values).astype(np.float32), transpose=False)
    x = _solve(rows, torch.from_numpy(y.astype(np.float32)), cfg.regularization, 10_000).numpy()
    dense = block_data.dense()
    u = 7
    c = 1.0 + cfg.alpha * dense[u]
    p = (dense[u] > 0).astype(np.float64)
    a = y.T @ (c[:, None] * y) + cfg.regularization * np.eye(cfg.factors)
    expected = np.linalg.solve(a, y.T @ (c * p))
    assert x[u] == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_bpr_recommends_within_own_block(block_data: Interactions) -> None:
    cfg = BPRConfig(factors=8, learning_rate=0.03, regularization=1e-2, epochs=40, batch_size=128)
    model = BPR(cfg).fit(block_data)
    assert_recommends_own_block(model.score(np.arange(block_data.n_users)), block_data)


def test_bpr_negatives_are_never_observed(block_data: Interactions) -> None:
    keys = sorted_pair_keys(block_data)
    rng = np.random.default_rng(0)
    neg = sample_negatives(rng, keys, block_data.users, block_data.n_items)
    observed = set(zip(block_data.users.tolist(), block_data.items.tolist()))
    assert not any((u, j) in observed for u, j in zip(block_data.users.tolist(), neg.tolist()))


def test_ease_recommends_within_own_block(block_data: Interactions) -> None:
    model = EASE(EASEConfig(l2=10.0)).fit(block_data)
    assert_recommends_own_block(model.score(np.arange(block_data.n_users)), block_data)
    assert np.allclose(np.diag(model.item_weights()), 0.0)


def test_popularity_ranks_by_count() -> None:
    data = Interactions.from_arrays([0, 1, 2, 0, 1, 0], [2, 2, 2, 1, 1, 0], 3, 4)
    scores = Popularity().fit(data).score(np.array([0, 1]))
    assert scores[0].tolist() == [1.0, 2.0, 3.0, 0.0]


@pytest.mark.parametrize(
    "make, load",
    [
        (lambda: ALS(ALSConfig(factors=4, iterations=2)), ALS.load),
        (lambda: BPR(BPRConfig(factors=4, epochs=1)), BPR.load),
        (lambda: EASE(EASEConfig(l2=5.0)), EASE.load),
        (Popularity, Popularity.load),
    ],
)
def test_save_load_round_trip(make, load, block_data: Interactions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = make().fit(block_data)
    path = tmp_path / "model.pt"
    model.save(path)
    users = np.arange(10)
    assert np.array_equal(load(path).score(users), model.score(users))


def test_loading_the_wrong_kind_says_so(block_data: Interactions, tmp_path: Path) -> None:
    ALS(ALSConfig(factors=2, iterations=1)).fit(block_data).save(tmp_path / "als.pt")
    with pytest.raises(ValueError, match="'als' artifact, not 'bpr'"):
        BPR.load(tmp_path / "als.pt")
