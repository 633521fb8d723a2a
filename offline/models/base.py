"""The interface every retrieval model shares, plus torch helpers (sparse matrices, safe save/load).

A model is built from a frozen config, trained with ``fit(train)`` and asked for
``score(users) -> (len(users), n_items)`` float32 scores.  Factor models also expose
``user_vectors()`` / ``item_vectors()`` (float32 numpy, score = user . item), which is
what the FAISS wrapper indexes.  Artifacts are ``torch.save`` of plain tensors and
primitive config values, read back with ``torch.load(..., weights_only=True)``; no pickle.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import torch

from offline.interactions import Interactions

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@runtime_checkable
class Recommender(Protocol):
    name: str

    def fit(self, train: Interactions, progress: bool = False) -> Recommender: ...

    def score(self, users: I64) -> F32: ...

    def save(self, path: Path) -> None: ...


class FactorModel(ABC):
    """score(u, i) = user_vectors()[u] . item_vectors()[i]."""

    name: str = "factor"

    def __init__(self) -> None:
        self._user: torch.Tensor | None = None
        self._item: torch.Tensor | None = None

    @abstractmethod
    def fit(self, train: Interactions, progress: bool = False) -> FactorModel: ...

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._user is None or self._item is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(train) or load(path) first")
        return self._user, self._item

    def user_vectors(self) -> F32:
        return np.ascontiguousarray(self._factors()[0].detach().cpu().numpy().astype(np.float32))

    def item_vectors(self) -> F32:
        return np.ascontiguousarray(self._factors()[1].detach().cpu().numpy().astype(np.float32))

    def score(self, users: I64) -> F32:
        u, v = self._factors()
        idx = torch.as_tensor(np.asarray(users, dtype=np.int64))
        with torch.no_grad():
            return (u[idx] @ v.T).numpy().astype(np.float32)

    def config_dict(self) -> dict[str, Any]:
        return {}

    def save(self, path: Path) -> None:
        user, item = self._factors()
        save_state(path, self.name, self.config_dict(), {"user": user, "item": item})


def save_state(path: Path, kind: str, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Write {kind, config, tensors} atomically (tmp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    state = {"kind": kind, "config": config, "tensors": {k: v.detach().cpu().contiguous() for k, v in tensors.items()}}
    torch.save(state, tmp)
    tmp.replace(path)


def load_state(path: Path, kind: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("kind") != kind:
        found = state.get("kind") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path} holds a {found!r} artifact, not {kind!r}: load it with the matching model class")
    return dict(state["config"]), dict(state["tensors"])


def sparse_rows(
    data: Interactions, values: npt.NDArray[np.float32], transpose: bool = False
) -> torch.Tensor:
    """CSR tensor (n_users, n_items) (or its transpose) holding ``values`` at the interaction positions."""
    rows, cols = (data.items, data.users) if transpose else (data.users, data.items)
    shape = (data.n_items, data.n_users) if transpose else (data.n_users, data.n_items)
    coo = torch.sparse_coo_tensor(
        torch.as_tensor(np.stack([rows, cols])),
        torch.as_tensor(np.asarray(values, dtype=np.float32)),
        size=shape,
        check_invariants=False,
    ).coalesce()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return coo.to_sparse_csr()


def sorted_pair_keys(data: Interactions) -> I64:
    """Sorted unique user * n_items + item keys, for O(log n) "is this pair observed?" checks."""
    return np.unique(data.users * np.int64(data.n_items) + data.items)


def is_observed(keys: I64, users: I64, items: I64, n_items: int) -> npt.NDArray[np.bool_]:
    q = users * np.int64(n_items) + items
    pos = np.searchsorted(keys, q)
    pos = np.minimum(pos, len(keys) - 1)
    return keys[pos] == q if len(keys) else np.zeros(len(q), dtype=np.bool_)
