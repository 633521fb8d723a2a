"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008) in torch, CPU, exact alternating solves.

Each observed pair (u, i) with strength r gets preference p = 1 and confidence
c = 1 + alpha * r; unobserved pairs have p = 0, c = 1.  With the item factors Y fixed,
every user's factors solve

    (Y^T Y + sum_{i in I(u)} (c_ui - 1) y_i y_i^T + reg * I) x_u = sum_{i in I(u)} c_ui y_i

All users are solved at once: the per-user Gram corrections come from one sparse
(users x items) @ (items x f^2) product, then a batched Cholesky solve.  Users are
processed in chunks so memory stays at ``chunk * f^2`` floats.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from offline.interactions import Interactions
from offline.models.base import FactorModel, load_state, sparse_rows


@dataclass(frozen=True)
class ALSConfig:
    factors: int = 64
    regularization: float = 1.0
    alpha: float = 10.0
    iterations: int = 15
    use_values: bool = False  # r = interaction value (e.g. rating) instead of 1
    init_std: float = 0.01
    seed: int = 0
    max_chunk_floats: int = 32_000_000  # bounds memory of the batched Gram matrices


class ALS(FactorModel):
    name = "als"

    def __init__(self, config: ALSConfig = ALSConfig()) -> None:
        super().__init__()
        self.config = config

    def config_dict(self) -> dict[str, object]:
        return asdict(self.config)

    def fit(self, train: Interactions, progress: bool = False) -> ALS:
        cfg = self.config
        strength = train.values if cfg.use_values else np.ones(len(train), dtype=np.float32)
        conf_minus_1 = (cfg.alpha * strength).astype(np.float32)
        by_user = _ConfidenceRows(train, conf_minus_1, transpose=False)
        by_item = _ConfidenceRows(train, conf_minus_1, transpose=True)
        gen = torch.Generator().manual_seed(cfg.seed)
        user = torch.randn(train.n_users, cfg.factors, generator=gen) * cfg.init_std
        item = torch.randn(train.n_items, cfg.factors, generator=gen) * cfg.init_std
        for _ in tqdm(range(cfg.iterations), desc="als", disable=not progress, leave=False):
            user = _solve(by_user, item, cfg.regularization, cfg.max_chunk_floats)
            item = _solve(by_item, user, cfg.regularization, cfg.max_chunk_floats)
        self._user, self._item = user, item
        return self

    @classmethod
    def load(cls, path: Path) -> ALS:
        config, tensors = load_state(path, cls.name)
        model = cls(ALSConfig(**config))
        model._user, model._item = tensors["user"], tensors["item"]
        return model


class _ConfidenceRows:
    """Rows (users, or items when transposed) with their (c - 1) and c values, as CSR chunks."""

    def __init__(self, data: Interactions, conf_minus_1: np.ndarray, transpose: bool) -> None:
        self.minus_1 = sparse_rows(data, conf_minus_1, transpose=transpose)
        self.n_rows = data.n_items if transpose else data.n_users
        self.crow = self.minus_1.crow_indices()
        self.col = self.minus_1.col_indices()
        self.val = self.minus_1.values()
        self.n_cols = data.n_users if transpose else data.n_items

    def chunk(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(c - 1) and c as CSR tensors for rows [start, stop)."""
        lo, hi = int(self.crow[start]), int(self.crow[stop])
        crow = self.crow[start : stop + 1] - lo
        col, val = self.col[lo:hi], self.val[lo:hi]
        size = (stop - start, self.n_cols)
        minus_1 = torch.sparse_csr_tensor(crow, col, val, size=size, check_invariants=False)
        conf = torch.sparse_csr_tensor(crow, col, val + 1.0, size=size, check_invariants=False)
        return minus_1, conf


def _solve(rows: _ConfidenceRows, fixed: torch.Tensor, reg: float, max_chunk_floats: int) -> torch.Tensor:
    """Least-squares solve of every row's factors given the other side's factors ``fixed``."""
    f = fixed.shape[1]
    gram = fixed.T @ fixed + reg * torch.eye(f)
    outer = (fixed[:, :, None] * fixed[:, None, :]).reshape(fixed.shape[0], f * f)
    chunk = max(1, max_chunk_floats // (f * f))
    out = torch.empty(rows.n_rows, f)
    for start in range(0, rows.n_rows, chunk):
        stop = min(rows.n_rows, start + chunk)
        minus_1, conf = rows.chunk(start, stop)
        a = (minus_1 @ outer).reshape(stop - start, f, f) + gram
        b = conf @ fixed
        chol, info = torch.linalg.cholesky_ex(a)
        if bool((info != 0).any()):  # only with reg == 0 on degenerate data; fall back to lstsq
            out[start:stop] = torch.linalg.lstsq(a, b.unsqueeze(-1)).solution.squeeze(-1)
        else:
            out[start:stop] = torch.cholesky_solve(b.unsqueeze(-1), chol).squeeze(-1)
    return out
