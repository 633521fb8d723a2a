"""The two-tower model embeds never-seen items and users from metadata alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from offline.interactions import Interactions
from offline.models.side_info import ItemFeatures, UserFeatures, Vocabulary
from offline.models.two_tower import TwoTower, TwoTowerConfig

VOCAB = Vocabulary(genres=("Action", "Comedy", "Drama"), occupations=("engineer", "writer"))
N_ITEMS, N_USERS = 40, 60  # items 0-19 Action, 20-39 Comedy; users 0-29 engineers like Action


@pytest.fixture(scope="module")
def world() -> tuple[Interactions, UserFeatures, ItemFeatures]:
    rng = np.random.default_rng(7)
    item_genres = [("Action",) if i < 20 else ("Comedy",) for i in range(N_ITEMS)]
    items = VOCAB.encode_items(item_genres, rng.integers(1970, 1999, N_ITEMS).tolist())
    occupations = ["engineer" if u < 30 else "writer" for u in range(N_USERS)]
    users = VOCAB.encode_users(rng.integers(18, 60, N_USERS).tolist(), ["M", "F"] * (N_USERS // 2), occupations)
    us, its = [], []
    for u in range(N_USERS):
        block = np.arange(0, 20) if u < 30 else np.arange(20, 40)
        chosen = block[rng.random(20) < 0.5]
        us += [u] * len(chosen)
        its += chosen.tolist()
    return Interactions.from_arrays(us, its, N_USERS, N_ITEMS), users, items


@pytest.fixture(scope="module")
def model(world: tuple[Interactions, UserFeatures, ItemFeatures]) -> TwoTower:
    data, users, items = world
    cfg = TwoTowerConfig(dim=16, id_dim=16, meta_dim=8, hidden=32, epochs=25, batch_size=128, id_dropout=0.3, seed=0)
    return TwoTower(users, items, cfg).fit(data)


def test_never_seen_item_lands_near_its_genre(model: TwoTower) -> None:
    new = VOCAB.encode_items([("Action",)], [1995])
    v = model.embed_items(new)[0]  # no id: metadata only
    items = model.item_vectors()
    to_action, to_comedy = float((items[:20] @ v).mean()), float((items[20:] @ v).mean())
    assert to_action > to_comedy + 0.2, (to_action, to_comedy)
    scores = model.user_vectors() @ v
    assert scores[:30].mean() > scores[30:].mean()  # Action fans rank it above Comedy fans do


def test_never_seen_user_gets_items_matching_their_metadata(model: TwoTower) -> None:
    new = VOCAB.encode_users([30], ["F"], ["writer"])
    u = model.embed_users(new)[0]
    scores = model.item_vectors() @ u
    assert scores[20:].mean() > scores[:20].mean()


def test_known_users_prefer_their_block(model: TwoTower) -> None:
    s = model.score(np.arange(N_USERS))
    assert (s[:30, :20].mean(1) > s[:30, 20:].mean(1)).all()
    assert (s[30:, 20:].mean(1) > s[30:, :20].mean(1)).all()


def test_save_load_round_trip(model: TwoTower, tmp_path: Path) -> None:
    model.save(tmp_path / "tt.pt")
    loaded = TwoTower.load(tmp_path / "tt.pt")
    assert np.allclose(loaded.item_vectors(), model.item_vectors(), atol=1e-6)
    new = VOCAB.encode_items([("Comedy", "Drama")], [None])
    assert np.allclose(loaded.embed_items(new), model.embed_items(new), atol=1e-6)


def test_mismatched_features_are_rejected(world: tuple[Interactions, UserFeatures, ItemFeatures]) -> None:
    data, users, items = world
    small = Interactions.from_arrays([0], [0], 1, N_ITEMS)
    with pytest.raises(ValueError, match="same index tables"):
        TwoTower(users, items).fit(small)
