"""Categorical metadata for the two-tower model: items (genres, year bucket) and users
(age bucket, gender, occupation), encoded against fixed vocabularies so that items and
users never seen in training can be encoded the same way.  Index 0 is always "unknown"."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from offline.movielens import MLUser, Movie

YEAR_EDGES: tuple[int, ...] = (1940, 1960, 1970, 1980, 1990, 1994, 1996, 1997, 1998)
AGE_EDGES: tuple[int, ...] = (18, 25, 35, 45, 50, 56)
GENDERS: tuple[str, ...] = ("M", "F")


@dataclass(frozen=True)
class ItemFeatures:
    genres: npt.NDArray[np.float32]  # (n, n_genres) multi-hot
    year_bucket: npt.NDArray[np.int64]  # (n,), 0 = unknown year

    def __len__(self) -> int:
        return len(self.year_bucket)


@dataclass(frozen=True)
class UserFeatures:
    age_bucket: npt.NDArray[np.int64]  # 0 = unknown
    gender: npt.NDArray[np.int64]  # 0 = unknown
    occupation: npt.NDArray[np.int64]  # 0 = unknown

    def __len__(self) -> int:
        return len(self.age_bucket)


@dataclass(frozen=True)
class Vocabulary:
    genres: tuple[str, ...]
    occupations: tuple[str, ...]
    year_edges: tuple[int, ...] = YEAR_EDGES
    age_edges: tuple[int, ...] = AGE_EDGES

    @property
    def n_year_buckets(self) -> int:
        return len(self.year_edges) + 2  # unknown + len(edges) + 1 intervals

    @property
    def n_age_buckets(self) -> int:
        return len(self.age_edges) + 2

    @property
    def n_occupations(self) -> int:
        return len(self.occupations) + 1

    @staticmethod
    def from_movielens(movies: Sequence[Movie], users: Sequence[MLUser]) -> Vocabulary:
        genres = sorted({g for m in movies for g in m.genres if g != "unknown"})
        occupations = sorted({u.occupation for u in users})
        return Vocabulary(genres=tuple(genres), occupations=tuple(occupations))

    def encode_items(self, genres: Sequence[Sequence[str]], years: Sequence[int | None]) -> ItemFeatures:
        index = {g: k for k, g in enumerate(self.genres)}
        multi_hot = np.zeros((len(genres), len(self.genres)), dtype=np.float32)
        for row, gs in enumerate(genres):
            for g in gs:
                if g in index:
                    multi_hot[row, index[g]] = 1.0
        buckets = [0 if y is None else 1 + bisect_right(self.year_edges, y) for y in years]
        return ItemFeatures(multi_hot, np.asarray(buckets, dtype=np.int64))

    def encode_users(
        self, ages: Sequence[int | None], genders: Sequence[str | None], occupations: Sequence[str | None]
    ) -> UserFeatures:
        occ = {o: k + 1 for k, o in enumerate(self.occupations)}
        gen = {g: k + 1 for k, g in enumerate(GENDERS)}
        return UserFeatures(
            age_bucket=np.asarray(
                [0 if a is None else 1 + bisect_right(self.age_edges, a) for a in ages], dtype=np.int64
            ),
            gender=np.asarray([gen.get(g or "", 0) for g in genders], dtype=np.int64),
            occupation=np.asarray([occ.get(o or "", 0) for o in occupations], dtype=np.int64),
        )


def movielens_features(
    movies: Sequence[Movie], users: Sequence[MLUser], item_ids: Sequence[str], user_ids: Sequence[str]
) -> tuple[Vocabulary, ItemFeatures, UserFeatures]:
    """Encode MovieLens metadata in the order of the split's index -> id tables."""
    vocab = Vocabulary.from_movielens(movies, users)
    by_item = {m.item_id: m for m in movies}
    by_user = {u.user_id: u for u in users}
    its = [by_item.get(i) for i in item_ids]
    us = [by_user.get(u) for u in user_ids]
    items = vocab.encode_items([m.genres if m else () for m in its], [m.year if m else None for m in its])
    users_f = vocab.encode_users(
        [u.age if u else None for u in us], [u.gender if u else None for u in us], [u.occupation if u else None for u in us]
    )
    return vocab, items, users_f
