"""A user x item interaction set in coordinate form (contiguous 0-based indices), numpy only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Interactions:
    """One row per (user, item) pair; ``values`` is the interaction strength (e.g. the rating)."""

    users: IntArray
    items: IntArray
    values: FloatArray
    n_users: int
    n_items: int

    def __post_init__(self) -> None:
        if not (len(self.users) == len(self.items) == len(self.values)):
            raise ValueError(
                f"users, items and values must have equal length; got "
                f"{len(self.users)}, {len(self.items)}, {len(self.values)}"
            )
        if len(self.users) and (self.users.min() < 0 or self.users.max() >= self.n_users):
            raise ValueError(f"user indices must lie in [0, {self.n_users})")
        if len(self.items) and (self.items.min() < 0 or self.items.max() >= self.n_items):
            raise ValueError(f"item indices must lie in [0, {self.n_items})")

    @staticmethod
    def from_arrays(
        users: npt.ArrayLike,
        items: npt.ArrayLike,
        n_users: int,
        n_items: int,
        values: npt.ArrayLike | None = None,
    ) -> Interactions:
        u = np.asarray(users, dtype=np.int64)
        i = np.asarray(items, dtype=np.int64)
        v = np.ones(len(u), dtype=np.float32) if values is None else np.asarray(values, dtype=np.float32)
        return Interactions(u, i, v, n_users, n_items)

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, mask_or_index: npt.NDArray[np.bool_] | IntArray) -> Interactions:
        return Interactions(
            self.users[mask_or_index],
            self.items[mask_or_index],
            self.values[mask_or_index],
            self.n_users,
            self.n_items,
        )

    def dense(self, binary: bool = False) -> FloatArray:
        """(n_users, n_items) float32 matrix; duplicate pairs keep the last value."""
        m = np.zeros((self.n_users, self.n_items), dtype=np.float32)
        m[self.users, self.items] = 1.0 if binary else self.values
        return m

    def csr(self) -> tuple[IntArray, IntArray, FloatArray]:
        """(indptr, item indices, values) with rows sorted by user then item."""
        order = np.lexsort((self.items, self.users))
        counts = np.bincount(self.users, minlength=self.n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return indptr, self.items[order], self.values[order]

    def items_by_user(self) -> list[IntArray]:
        indptr, idx, _ = self.csr()
        return [idx[indptr[u] : indptr[u + 1]] for u in range(self.n_users)]

    def user_counts(self) -> IntArray:
        return np.bincount(self.users, minlength=self.n_users).astype(np.int64)

    def item_counts(self) -> IntArray:
        return np.bincount(self.items, minlength=self.n_items).astype(np.int64)
