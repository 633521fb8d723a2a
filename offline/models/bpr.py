"""Bayesian Personalized Ranking (Rendle et al. 2009) matrix factorisation in torch.

For each observed (u, i) a negative j is drawn uniformly among the items u has not
interacted with, and the loss is -log sigmoid(x_ui - x_uj) + reg * ||params of the triple||^2,
optimised with Adam on mini-batches.  Item biases are folded into the exported factors
(user vector gets a trailing 1, item vector its bias) so score = user . item still holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from offline.interactions import Interactions
from offline.models.base import FactorModel, I64, is_observed, load_state, sorted_pair_keys


@dataclass(frozen=True)
class BPRConfig:
    factors: int = 64
    learning_rate: float = 0.01
    regularization: float = 1e-4
    epochs: int = 40
    batch_size: int = 2048
    init_std: float = 0.1
    item_bias: bool = True
    seed: int = 0


class BPR(FactorModel):
    name = "bpr"

    def __init__(self, config: BPRConfig = BPRConfig()) -> None:
        super().__init__()
        self.config = config

    def config_dict(self) -> dict[str, object]:
        return asdict(self.config)

    def fit(self, train: Interactions, progress: bool = False) -> BPR:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        user = (torch.randn(train.n_users, cfg.factors, generator=gen) * cfg.init_std).requires_grad_()
        item = (torch.randn(train.n_items, cfg.factors, generator=gen) * cfg.init_std).requires_grad_()
        bias = torch.zeros(train.n_items, requires_grad=cfg.item_bias)
        params = [user, item] + ([bias] if cfg.item_bias else [])
        opt = torch.optim.Adam(params, lr=cfg.learning_rate)
        keys = sorted_pair_keys(train)
        n = len(train)
        for _ in tqdm(range(cfg.epochs), desc="bpr", disable=not progress, leave=False):
            order = rng.permutation(n)
            negatives = sample_negatives(rng, keys, train.users[order], train.n_items)
            for start in range(0, n, cfg.batch_size):
                sl = slice(start, start + cfg.batch_size)
                u = torch.from_numpy(train.users[order[sl]])
                i = torch.from_numpy(train.items[order[sl]])
                j = torch.from_numpy(negatives[sl])
                eu, ei, ej = user[u], item[i], item[j]
                diff = (eu * (ei - ej)).sum(1) + bias[i] - bias[j]
                reg = eu.pow(2).sum() + ei.pow(2).sum() + ej.pow(2).sum()
                if cfg.item_bias:
                    reg = reg + bias[i].pow(2).sum() + bias[j].pow(2).sum()
                loss = -F.logsigmoid(diff).sum() + cfg.regularization * reg
                opt.zero_grad()
                (loss / len(u)).backward()  # type: ignore[no-untyped-call]
                opt.step()
        with torch.no_grad():
            ones = torch.ones(train.n_users, 1)
            self._user = torch.cat([user.detach(), ones], dim=1)
            self._item = torch.cat([item.detach(), bias.detach().reshape(-1, 1)], dim=1)
        return self

    @classmethod
    def load(cls, path: Path) -> BPR:
        config, tensors = load_state(path, cls.name)
        model = cls(BPRConfig(**config))
        model._user, model._item = tensors["user"], tensors["item"]
        return model


def sample_negatives(
    rng: np.random.Generator, keys: I64, users: I64, n_items: int, max_rounds: int = 20
) -> I64:
    """One uniformly drawn unobserved item per user entry (rejection sampling, vectorised)."""
    neg = rng.integers(0, n_items, size=len(users))
    bad = is_observed(keys, users, neg, n_items)
    for _ in range(max_rounds):
        if not bad.any():
            break
        neg[bad] = rng.integers(0, n_items, size=int(bad.sum()))
        bad[bad] = is_observed(keys, users[bad], neg[bad], n_items)
    return neg.astype(np.int64)
