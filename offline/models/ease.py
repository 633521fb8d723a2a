"""EASE (Steck 2019): a closed-form item-item linear autoencoder.

    P = (X^T X + l2 * I)^-1,   B = -P / diag(P)  (column-wise),   diag(B) = 0
    score(u) = X[u] @ B

One dense (n_items x n_items) inversion, so it suits catalogues up to ~10-20k items;
for larger ones use ALS. Not a factor model: scoring needs the user's history row,
which the model keeps (and saves) alongside B.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from offline.interactions import Interactions
from offline.models.base import F32, I64, load_state, save_state


@dataclass(frozen=True)
class EASEConfig:
    l2: float = 300.0
    use_values: bool = False  # X holds the interaction value instead of 1


class EASE:
    name = "ease"

    def __init__(self, config: EASEConfig = EASEConfig()) -> None:
        self.config = config
        self._b: torch.Tensor | None = None
        self._x: torch.Tensor | None = None  # (n_users, n_items) training history, float32

    def fit(self, train: Interactions, progress: bool = False) -> EASE:
        x = torch.from_numpy(train.dense(binary=not self.config.use_values))
        gram = (x.T.double() @ x.double())
        gram += self.config.l2 * torch.eye(train.n_items, dtype=torch.float64)
        p = torch.linalg.inv(gram)
        b = p / (-torch.diagonal(p))[None, :]
        b.fill_diagonal_(0.0)
        self._b, self._x = b.float(), x
        return self

    def _fitted(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._b is None or self._x is None:
            raise RuntimeError("EASE is not fitted: call fit(train) or EASE.load(path) first")
        return self._b, self._x

    def item_weights(self) -> F32:
        """The (n_items, n_items) item-to-item weight matrix B."""
        return self._fitted()[0].numpy()

    def score(self, users: I64) -> F32:
        b, x = self._fitted()
        with torch.no_grad():
            return (x[torch.as_tensor(np.asarray(users, dtype=np.int64))] @ b).numpy()

    def score_history(self, history: F32) -> F32:
        """Scores for arbitrary (possibly new) users given their (n, n_items) history rows."""
        b, _ = self._fitted()
        return (torch.from_numpy(np.asarray(history, dtype=np.float32)) @ b).numpy()

    def save(self, path: Path) -> None:
        b, x = self._fitted()
        xs = x.to_sparse().coalesce()
        tensors = {"b": b, "x_indices": xs.indices(), "x_values": xs.values(), "x_shape": torch.tensor(list(x.shape))}
        save_state(path, self.name, asdict(self.config), tensors)

    @classmethod
    def load(cls, path: Path) -> EASE:
        config, t = load_state(path, cls.name)
        model = cls(EASEConfig(**config))
        shape = tuple(int(s) for s in t["x_shape"].tolist())
        model._b = t["b"]
        model._x = torch.sparse_coo_tensor(
            t["x_indices"], t["x_values"], size=shape, check_invariants=False
        ).to_dense()
        return model
