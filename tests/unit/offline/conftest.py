"""Synthetic interaction data whose right answer is known (shared by the model tests)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from offline.interactions import Interactions

N_BLOCKS = 4
USERS_PER_BLOCK = 30
ITEMS_PER_BLOCK = 25


def block_of_user(u: int) -> int:
    return u // USERS_PER_BLOCK


def block_of_item(i: int) -> int:
    return i // ITEMS_PER_BLOCK


@pytest.fixture(scope="session", autouse=True)
def _single_thread_torch() -> None:
    """Tiny models: one thread is faster than two on a shared 2-core machine."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def block_data() -> Interactions:
    """Users only interact with items of their own block (each with ~60% of that block's items).

    Every model worth its name must recommend, for every user, unseen items of the user's
    own block before any item of another block.
    """
    rng = np.random.default_rng(42)
    users, items = [], []
    for b in range(N_BLOCKS):
        block_items = np.arange(b * ITEMS_PER_BLOCK, (b + 1) * ITEMS_PER_BLOCK)
        for u in range(b * USERS_PER_BLOCK, (b + 1) * USERS_PER_BLOCK):
            chosen = block_items[rng.random(ITEMS_PER_BLOCK) < 0.6]
            users.extend([u] * len(chosen))
            items.extend(chosen.tolist())
    ratings = rng.integers(3, 6, size=len(users))
    return Interactions.from_arrays(
        users, items, N_BLOCKS * USERS_PER_BLOCK, N_BLOCKS * ITEMS_PER_BLOCK, values=ratings
    )


def assert_recommends_own_block(score: np.ndarray, data: Interactions, k: int = 5) -> None:
    """The first min(k, unseen items of the own block) recommendations all come from the own block."""
    from offline.evaluator import recommend

    users = np.arange(data.n_users, dtype=np.int64)
    ranked = recommend(lambda us: score[us], data, users, k)
    seen = data.user_counts()
    wrong = []
    for u, row in zip(users, ranked):
        n_own_unseen = ITEMS_PER_BLOCK - int(seen[u])
        head = [int(i) for i in row[: min(k, n_own_unseen)]]
        if any(block_of_item(i) != block_of_user(int(u)) for i in head):
            wrong.append((int(u), head))
    assert not wrong, f"{len(wrong)} users got items from other blocks, e.g. {wrong[:3]}"
