"""The offline evaluation protocol's data split.

- ratings >= 3 are positives (everything else is dropped);
- one global random 80/20 split of the positives, seed 0 (``numpy.random.default_rng(0)``);
- evaluated users are those with at least one test item.

:func:`random_split` is also used to carve a validation split out of the training
positives for tuning (with a different seed), so the test split is never tuned on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offline.interactions import IntArray, Interactions
from offline.movielens import MovieLens


@dataclass(frozen=True)
class SplitConfig:
    min_rating: int = 3
    test_fraction: float = 0.2
    seed: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {"min_rating": self.min_rating, "test_fraction": self.test_fraction, "seed": self.seed}


@dataclass(frozen=True)
class Split:
    train: Interactions
    test: Interactions

    def eval_users(self) -> IntArray:
        """Users with at least one test item, ascending."""
        return np.flatnonzero(self.test.user_counts() > 0).astype(np.int64)


@dataclass(frozen=True)
class ProtocolData:
    """The split plus the mapping from contiguous indices back to MovieLens ids."""

    split: Split
    user_ids: tuple[str, ...]  # index -> MovieLens user id
    item_ids: tuple[str, ...]  # index -> MovieLens item id
    config: SplitConfig


def random_split(data: Interactions, test_fraction: float, seed: int) -> Split:
    """Shuffle all rows with ``default_rng(seed)``; the first round(n * (1 - f)) go to train."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n = len(data)
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(n * (1.0 - test_fraction)))
    return Split(train=data.subset(np.sort(perm[:n_train])), test=data.subset(np.sort(perm[n_train:])))


def positives(ml: MovieLens, min_rating: int) -> tuple[Interactions, tuple[str, ...], tuple[str, ...]]:
    """All ratings >= min_rating as interactions (value = rating), over every user and movie."""
    user_ids = tuple(sorted({u.user_id for u in ml.users} | {r.user_id for r in ml.ratings}, key=int))
    item_ids = tuple(sorted({m.item_id for m in ml.movies} | {r.item_id for r in ml.ratings}, key=int))
    uix = {uid: k for k, uid in enumerate(user_ids)}
    iix = {iid: k for k, iid in enumerate(item_ids)}
    kept = [r for r in ml.ratings if r.rating >= min_rating]
    data = Interactions.from_arrays(
        [uix[r.user_id] for r in kept],
        [iix[r.item_id] for r in kept],
        len(user_ids),
        len(item_ids),
        values=[float(r.rating) for r in kept],
    )
    return data, user_ids, item_ids


def protocol_split(ml: MovieLens, config: SplitConfig = SplitConfig()) -> ProtocolData:
    """The protocol: positives (rating >= 3), global random 80/20 split with seed 0."""
    data, user_ids, item_ids = positives(ml, config.min_rating)
    split = random_split(data, config.test_fraction, config.seed)
    return ProtocolData(split=split, user_ids=user_ids, item_ids=item_ids, config=config)


def validation_split(train: Interactions, fraction: float = 0.2, seed: int = 1) -> Split:
    """Carve a validation split from the training positives only (for tuning; never the test split)."""
    return random_split(train, fraction, seed)
