"""Rankers that turn a candidate feature matrix into scores.

Two implementations of one :class:`Ranker` protocol:

* :class:`LightGBMRanker` wraps a LightGBM LambdaRank model loaded from its
  *text* format (never pickle).  Its feature order is the model's own.
* :class:`HeuristicRanker` is used while no model has been promoted: a
  documented weighted sum of whichever known features are present.

Both take an ``(n_candidates, n_features)`` float matrix whose columns follow
``feature_names``; ``contributions`` returns ``(n, n_features + 1)`` where the
last column is the bias (expected value), so each row sums to the score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol, Sequence, runtime_checkable

import lightgbm as lgb
import numpy as np

from serving.forest import Forest


class FeatureMismatch(ValueError):
    """The feature names supplied do not match the ranker's feature order."""


@runtime_checkable
class Ranker(Protocol):
    @property
    def feature_names(self) -> tuple[str, ...]: ...

    @property
    def version(self) -> str: ...

    def score(self, matrix: np.ndarray) -> np.ndarray: ...

    def contributions(self, matrix: np.ndarray) -> np.ndarray: ...

    def check_features(self, names: Sequence[str]) -> None: ...


def feature_mismatch(expected: Sequence[str], got: Sequence[str]) -> str | None:
    """A human-readable description of how ``got`` differs from ``expected``, or ``None``."""
    expected, got = list(expected), list(got)
    if expected == got:
        return None
    exp_set, got_set = set(expected), set(got)
    parts: list[str] = []
    missing = [n for n in expected if n not in got_set]
    extra = [n for n in got if n not in exp_set]
    if missing:
        parts.append(f"missing {missing}")
    if extra:
        parts.append(f"extra {extra}")
    dupes = sorted({n for n in got if got.count(n) > 1})
    if dupes:
        parts.append(f"duplicated {dupes}")
    if not missing and not extra and not dupes:
        wrong = [f"position {i}: expected {e!r}, got {g!r}" for i, (e, g) in enumerate(zip(expected, got)) if e != g]
        parts.append("misordered (" + "; ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else "") + ")")
    return (
        "; ".join(parts)
        + f". The model expects {len(expected)} features in this order: {expected}. "
        "Assemble the matrix columns in the ranker's feature_names order."
    )


def _check_matrix(matrix: np.ndarray, n_features: int) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] != n_features:
        raise FeatureMismatch(f"feature matrix has shape {m.shape}; expected (n_candidates, {n_features})")
    return m


class LightGBMRanker:
    """A LightGBM model loaded from its text format (``model_file`` or a string).

    Scores come from :class:`serving.forest.Forest` (the same trees, the same raw scores, without
    LightGBM's per-row conversion) when it models the trees, else from ``Booster.predict``;
    contributions always from LightGBM (``pred_contrib``)."""

    def __init__(self, booster: lgb.Booster, version: str, num_threads: int = 1) -> None:
        self._booster = booster
        self._version = version
        self._names = tuple(booster.feature_name())
        self._num_threads = num_threads
        self._forest = Forest.from_booster(booster)
        if self._forest is not None:
            self._forest.warm()  # compile now (a loader thread), not on the first request

    @property
    def compiled(self) -> bool:
        """True when scores come from the compiled forest."""
        return self._forest is not None

    @classmethod
    def from_file(cls, path: str | Path, version: str, num_threads: int = 1) -> LightGBMRanker:
        return cls(lgb.Booster(model_file=str(path)), version, num_threads)

    @classmethod
    def from_string(cls, model_text: str, version: str, num_threads: int = 1) -> LightGBMRanker:
        return cls(lgb.Booster(model_str=model_text), version, num_threads)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def version(self) -> str:
        return self._version

    def check_features(self, names: Sequence[str]) -> None:
        problem = feature_mismatch(self._names, names)
        if problem is not None:
            raise FeatureMismatch(f"features do not match model {self._version}: {problem}")

    def score(self, matrix: np.ndarray) -> np.ndarray:
        m = _check_matrix(matrix, len(self._names))
        if m.shape[0] == 0:
            return np.zeros(0)
        if self._forest is not None:
            return self._forest.predict(m)
        out = self._booster.predict(m, raw_score=True, num_threads=self._num_threads)
        return np.asarray(out, dtype=np.float64)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """SHAP values (``pred_contrib``); rows sum to :meth:`score`.

        TreeSHAP is costly (a few ms per row for a few hundred trees): call it
        on the items actually returned, not on every candidate.
        """
        m = _check_matrix(matrix, len(self._names))
        if m.shape[0] == 0:
            return np.zeros((0, len(self._names) + 1))
        out = self._booster.predict(m, pred_contrib=True, num_threads=self._num_threads)
        return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class HeuristicTerm:
    """One term of the heuristic: ``weight * transform(value)``."""

    weight: float
    log1p: bool = False  # compress heavy-tailed counts with log(1 + max(x, 0))


DEFAULT_HEURISTIC: Mapping[str, HeuristicTerm] = {
    # the candidate's retrieval score (cosine of user and item vectors), in [-1, 1]
    "retrieval_score": HeuristicTerm(1.0),
    # decayed popularity (trending), heavy-tailed: log1p; the 1h signal adds momentum
    "popularity_decayed_by_item_24h": HeuristicTerm(0.5, log1p=True),
    "popularity_decayed_by_item_1h": HeuristicTerm(0.25, log1p=True),
    # the user's decayed affinity share for the item's best category, in [0, 1]
    "category_affinity_share_by_user_item": HeuristicTerm(1.0),
    # smoothed click-through rate (~0.01-0.2)
    "ctr_smoothed_by_item": HeuristicTerm(2.0),
    # age in seconds: log1p, a gentle preference for fresh items (1h: -0.41, 1d: -0.57)
    "age_s_by_item": HeuristicTerm(-0.05, log1p=True),
    # already shown to or used by the user: push down
    "seen_before_by_user_item": HeuristicTerm(-0.5),
}
"""Weights of the heuristic ranker (names as in docs/features.md); unknown features get weight 0."""

HEURISTIC_VERSION = "heuristic-v1"


class HeuristicRanker:
    """A transparent weighted sum over the features in ``feature_names``.

    ``score = sum_f weight_f * transform_f(x_f)`` over the features present in
    ``DEFAULT_HEURISTIC`` (or ``terms``); other columns are accepted and
    ignored, so it works on whatever subset of features exists.  Non-finite
    values count as 0.
    """

    def __init__(
        self,
        feature_names: Sequence[str] | None = None,
        terms: Mapping[str, HeuristicTerm] = DEFAULT_HEURISTIC,
        version: str = HEURISTIC_VERSION,
    ) -> None:
        names = tuple(terms) if feature_names is None else tuple(feature_names)
        if len(set(names)) != len(names):
            raise FeatureMismatch(f"duplicated feature names: {names}")
        self._names = names
        self._version = version
        self._weights = np.array([terms[n].weight if n in terms else 0.0 for n in names])
        self._log = np.array([n in terms and terms[n].log1p for n in names], dtype=bool)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def version(self) -> str:
        return self._version

    def check_features(self, names: Sequence[str]) -> None:
        problem = feature_mismatch(self._names, names)
        if problem is not None:
            raise FeatureMismatch(f"features do not match the heuristic ranker: {problem}")

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        m = _check_matrix(matrix, len(self._names))
        x = np.where(np.isfinite(m), m, 0.0)
        x = np.where(self._log, np.log1p(np.maximum(x, 0.0)), x)
        per_feature = x * self._weights
        return np.hstack([per_feature, np.zeros((m.shape[0], 1))])

    def score(self, matrix: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.contributions(matrix).sum(axis=1)
        return out


def top_contributions(row: np.ndarray, names: Sequence[str], n: int = 5) -> list[tuple[str, float]]:
    """The ``n`` largest contributions by absolute value (bias column excluded)."""
    values = np.asarray(row, dtype=np.float64)[: len(names)]
    order = sorted(range(len(names)), key=lambda i: (-abs(values[i]), i))[:n]
    return [(names[i], float(values[i])) for i in order if values[i] != 0.0]
