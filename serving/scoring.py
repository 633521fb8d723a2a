"""The serving ranker: the promoted LightGBM model, hot-reloaded; the heuristic without one.

:class:`ModelHolder` polls the registry pointer (``CURRENT``) in a background
task.  A new version is verified and loaded in a worker thread (text model,
checksummed by ``offline.registry``; no pickle), then published with one
attribute assignment, so a request holds either the old or the new ranker for
its whole duration and none is dropped.  A corrupt version is refused and the
current ranker stays.  With no promoted model, :class:`HeuristicRanker` ranks
(see ``serving.ranker.DEFAULT_HEURISTIC``).

Columns: the feature registry's names plus ``retrieval_score`` (the cosine of the
user's ANN query and the candidate, ``serving.candidates.query_scores``) and
``popularity_prior_by_item`` (the candidate's positives in the last training run's
data over the most popular item's, ``ItemVectors.popularity_share``).  :meth:`Scorer.matrix_for` reorders them into the ranker's own
feature order and checks the names (``check_features``); a model needing a
feature serving cannot supply falls back to the heuristic (counted).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from offline.registry import ModelRegistry, RegistryError, load_ranker
from serving.ranker import FeatureMismatch, HeuristicRanker, Ranker

log = logging.getLogger("streamrec.serving.scoring")

RETRIEVAL = "retrieval_score"
POPULARITY = "popularity_prior_by_item"
EXTRA = (RETRIEVAL, POPULARITY)  # = offline.ranker_data.EXTRA: the columns after the registry's features


@dataclass(frozen=True, eq=False)
class Loaded:
    ranker: Ranker
    version_dir: Path | None  # the registry version directory (for ANN artifacts), None for the heuristic


class ModelHolder:
    def __init__(self, registry_dir: Path, base_names: Sequence[str]) -> None:
        self.registry = ModelRegistry(registry_dir)
        self.columns = tuple(base_names) + EXTRA
        self.heuristic = Loaded(HeuristicRanker(self.columns), None)
        self.current = self.heuristic
        self.failed: str | None = None  # a version that failed to load (not retried until it changes)
        self._orders: dict[int, tuple[Ranker, np.ndarray | None]] = {}  # id(ranker) -> column order

    def matrix(self, ranker: Ranker, base: np.ndarray, retrieval: np.ndarray,
               popularity: np.ndarray | None = None) -> np.ndarray:
        """The ranker's float64 input: ``columns_matrix(base, retrieval, popularity)`` in the ranker's feature
        order.  The order is computed and checked (``matrix_for``) once per ranker."""
        hit = self._orders.get(id(ranker))
        if hit is None or hit[0] is not ranker:
            if len(self._orders) > 8:
                self._orders.clear()
            order = column_order(ranker, self.columns)
            hit = self._orders[id(ranker)] = (ranker, order)
        full = columns_matrix(base, retrieval, np.zeros(len(base)) if popularity is None else popularity)
        return full if hit[1] is None else full[:, hit[1]]

    def _load(self, version: str) -> Loaded:
        return Loaded(load_ranker(self.registry, version), self.registry.versions_dir / version)

    async def poll(self) -> bool:
        """Load the promoted version if it changed; True when the serving ranker was swapped."""
        version = await asyncio.to_thread(self.registry.current)
        if version is None:
            if self.current is not self.heuristic:
                self.current = self.heuristic
                return True
            return False
        if version == self.current.ranker.version or version == self.failed:
            return False
        try:
            loaded = await asyncio.to_thread(self._load, version)
        except (RegistryError, OSError, ValueError) as err:
            self.failed = version
            log.error("model %s refused, still serving %s: %s", version, self.current.ranker.version, err)
            return False
        missing = [n for n in loaded.ranker.feature_names if n not in self.columns]
        if missing:
            self.failed = version
            log.error("model %s needs features serving does not have (%s); still serving %s",
                      version, missing, self.current.ranker.version)
            return False
        self.current = loaded  # the atomic swap
        self.failed = None
        log.warning("serving model %s", version)
        return True


def columns_matrix(base: np.ndarray, retrieval: np.ndarray, popularity: np.ndarray | None = None) -> np.ndarray:
    """Registry features plus the retrieval score column and, when given, the popularity prior column
    (float64, C-contiguous, for the rankers)."""
    extra = 1 if popularity is None else 2
    n = base.shape[1]
    out = np.empty((base.shape[0], n + extra), dtype=np.float64)
    out[:, :n] = base
    out[:, n] = retrieval
    if popularity is not None:
        out[:, n + 1] = popularity
    return out


def column_order(ranker: Ranker, columns: Sequence[str]) -> np.ndarray | None:
    """Indices of the ranker's features among ``columns`` (None: the same order); raises
    FeatureMismatch when one is missing or the names do not check out."""
    names = ranker.feature_names
    if tuple(columns) == names:
        return None
    where = {n: j for j, n in enumerate(columns)}
    missing = [n for n in names if n not in where]
    if missing:
        raise FeatureMismatch(f"ranker {ranker.version} needs {missing}, which serving does not provide")
    ranker.check_features([columns[where[n]] for n in names])
    return np.array([where[n] for n in names], dtype=np.int64)


def matrix_for(ranker: Ranker, columns: Sequence[str], full: np.ndarray) -> np.ndarray:
    """``full``'s columns in the ranker's feature order; raises FeatureMismatch if one is missing."""
    order = column_order(ranker, columns)
    return full if order is None else full[:, order]
