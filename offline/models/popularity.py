"""Popularity baseline: every user gets the items with the most training interactions.

Expressed as a rank-1 factor model (user vector = [1], item vector = [count]) so it
shares the FactorModel interface and can be indexed by the FAISS wrapper.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from offline.interactions import Interactions
from offline.models.base import FactorModel, load_state


class Popularity(FactorModel):
    name = "popularity"

    def fit(self, train: Interactions, progress: bool = False) -> Popularity:
        counts = np.bincount(train.items, minlength=train.n_items).astype(np.float32)
        self._item = torch.from_numpy(counts).reshape(-1, 1)
        self._user = torch.ones((train.n_users, 1), dtype=torch.float32)
        return self

    @classmethod
    def load(cls, path: Path) -> Popularity:
        _, tensors = load_state(path, cls.name)
        model = cls()
        model._user, model._item = tensors["user"], tensors["item"]
        return model
