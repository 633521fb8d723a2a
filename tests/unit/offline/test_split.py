from __future__ import annotations

import numpy as np

from offline.interactions import Interactions
from offline.movielens import MLUser, Movie, MovieLens, Rating
from offline.split import SplitConfig, protocol_split, random_split


def _data(n: int = 1000) -> Interactions:
    rng = np.random.default_rng(3)
    return Interactions.from_arrays(rng.integers(0, 50, n), rng.integers(0, 80, n), 50, 80)


def test_split_is_deterministic_with_seed_0() -> None:
    a = random_split(_data(), 0.2, seed=0)
    b = random_split(_data(), 0.2, seed=0)
    assert np.array_equal(a.train.users, b.train.users) and np.array_equal(a.train.items, b.train.items)
    assert np.array_equal(a.test.users, b.test.users) and np.array_equal(a.test.items, b.test.items)
    c = random_split(_data(), 0.2, seed=1)
    assert not np.array_equal(a.test.items, c.test.items)


def test_split_partitions_rows_80_20() -> None:
    data = _data()
    s = random_split(data, 0.2, seed=0)
    assert len(s.train) == 800 and len(s.test) == 200
    keys = lambda d: sorted(zip(d.users.tolist(), d.items.tolist()))  # noqa: E731
    assert sorted(keys(s.train) + keys(s.test)) == keys(data)


def test_protocol_keeps_ratings_of_3_and_above() -> None:
    ratings = tuple(
        Rating(str(u), str(i), r, ts)
        for ts, (u, i, r) in enumerate([(1, 1, 5), (1, 2, 2), (2, 1, 3), (2, 3, 1), (3, 2, 4)] * 1)
    )
    movies = tuple(Movie(str(i), f"m{i}", 1995, ("Drama",)) for i in (1, 2, 3))
    users = tuple(MLUser(str(u), 30, "F", "other", "00000") for u in (1, 2, 3))
    data = protocol_split(MovieLens(ratings, movies, users), SplitConfig(test_fraction=0.34))
    s = data.split
    assert len(s.train) + len(s.test) == 3  # (1,1,5), (2,1,3), (3,2,4)
    assert data.user_ids == ("1", "2", "3") and data.item_ids == ("1", "2", "3")
    assert set(np.concatenate([s.train.values, s.test.values]).tolist()) == {5.0, 3.0, 4.0}
    assert set(s.eval_users().tolist()) == set(s.test.users.tolist())
