"""Retrieval models sharing one interface (see :mod:`offline.models.base`).

popularity, als, bpr and two_tower are factor models (user . item scores, float32 vectors
for FAISS); ease is an item-item model for small catalogues.
"""

from offline.models.als import ALS, ALSConfig
from offline.models.base import FactorModel, Recommender
from offline.models.bpr import BPR, BPRConfig
from offline.models.ease import EASE, EASEConfig
from offline.models.popularity import Popularity
from offline.models.two_tower import TwoTower, TwoTowerConfig

__all__ = [
    "ALS",
    "ALSConfig",
    "BPR",
    "BPRConfig",
    "EASE",
    "EASEConfig",
    "FactorModel",
    "Popularity",
    "Recommender",
    "TwoTower",
    "TwoTowerConfig",
]
