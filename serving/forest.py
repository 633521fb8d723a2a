"""A LightGBM model's trees as flat arrays, scored by one compiled loop (numba).

LightGBM's own ``Booster.predict`` spends most of its time per row outside the
trees: each dense row becomes a vector of (index, value) pairs, then a dense
buffer again, before the trees are walked.  At serving's 300 candidates that is
about half of the ranker's time.  :class:`Forest` walks the same trees over the
matrix directly and gives the same raw scores, bit for bit: each tree's leaf value
summed in float64 in tree order, with LightGBM's numerical decision rule
(``Tree::NumericalDecision``):

* a value with ``|x| <= 1e-35f`` (the float32 1e-35) is 0 (LightGBM drops such values from a dense row);
* ``missing_type=None``: NaN is treated as 0;
* ``missing_type=NaN``: NaN goes to the default child;
* ``missing_type=Zero``: NaN and 0 go to the default child;
* otherwise ``x <= threshold`` goes left.

:meth:`Forest.from_booster` returns None for what this loop does not model
(categorical splits, linear trees, more than one tree per iteration, averaged
output); the ranker then keeps LightGBM's predictor.  ``tests/unit/serving/test_forest.py``
checks the equality against ``Booster.predict`` on values at, just below and just
above every threshold, NaN, zeros and tiny values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from serving import compiled  # noqa: F401  (numba's cache directory; before the first compile)

ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (1e-35f: 1.0000000180025095e-35)
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}


@dataclass(frozen=True, eq=False)
class Forest:
    """Internal nodes of every tree (``feature``, ``threshold``, children; a child ``c < 0`` is leaf ``~c``),
    where NaN goes (``nan_child``), whether 0 goes to the default child (``zero_default``), the
    leaf values and each tree's root (``~leaf`` for a one-leaf tree)."""

    feature: np.ndarray  # int32 (nodes,)
    threshold: np.ndarray  # float64 (nodes,)
    left: np.ndarray  # int32 (nodes,)
    right: np.ndarray  # int32 (nodes,)
    nan_child: np.ndarray  # int32 (nodes,)
    zero_default: np.ndarray  # uint8 (nodes,)
    leaf_value: np.ndarray  # float64 (leaves,)
    roots: np.ndarray  # int32 (trees,)
    n_features: int

    @classmethod
    def from_dump(cls, dump: dict[str, Any]) -> Forest | None:
        """From ``Booster.dump_model()``; None when the model uses what this loop does not model."""
        if int(dump.get("num_tree_per_iteration", 1)) != 1 or dump.get("average_output"):
            return None
        nodes: dict[str, list[Any]] = {k: [] for k in ("feature", "threshold", "left", "right", "nan", "zero")}
        leaves: list[float] = []
        roots: list[int] = []

        def walk(node: dict[str, Any]) -> int | None:
            if "split_index" not in node:
                if "leaf_coeff" in node:
                    return None  # a linear tree
                leaves.append(float(node["leaf_value"]))
                return ~(len(leaves) - 1)
            if node.get("decision_type") != "<=" or node.get("missing_type") not in _MISSING:
                return None
            at = len(nodes["feature"])
            for k in nodes:
                nodes[k].append(0)
            kids = walk(node["left_child"]), walk(node["right_child"])
            if kids[0] is None or kids[1] is None:
                return None
            left, right = kids
            threshold = float(node["threshold"])
            default = left if node.get("default_left") else right
            missing = _MISSING[node["missing_type"]]
            nodes["feature"][at] = int(node["split_feature"])
            nodes["threshold"][at] = threshold
            nodes["left"][at], nodes["right"][at] = left, right
            # where NaN goes: as 0 (None), or to the default child (NaN, Zero)
            nodes["nan"][at] = (left if 0.0 <= threshold else right) if missing == 0 else default
            nodes["zero"][at] = 1 if missing == 1 else 0
            return at

        for tree in dump.get("tree_info", []):
            root = walk(tree["tree_structure"])
            if root is None or tree.get("is_linear"):
                return None
            roots.append(root)
        i32 = np.int32
        return cls(np.asarray(nodes["feature"], dtype=i32), np.asarray(nodes["threshold"], dtype=np.float64),
                   np.asarray(nodes["left"], dtype=i32), np.asarray(nodes["right"], dtype=i32),
                   np.asarray(nodes["nan"], dtype=i32), np.asarray(nodes["zero"], dtype=np.uint8),
                   np.asarray(leaves, dtype=np.float64), np.asarray(roots, dtype=i32),
                   int(dump.get("max_feature_idx", -1)) + 1)

    @classmethod
    def from_booster(cls, booster: Any) -> Forest | None:
        """From a ``lightgbm.Booster`` (the iterations ``predict`` uses by default)."""
        return cls.from_dump(booster.dump_model())

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Raw scores (float64, one per row) of a ``(rows, n_features)`` float32 or float64 matrix."""
        X = np.asarray(matrix)
        if X.dtype != np.float32 and X.dtype != np.float64:
            X = X.astype(np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"matrix has shape {X.shape}; expected (rows, {self.n_features})")
        out = np.empty(X.shape[0], dtype=np.float64)
        _predict(np.ascontiguousarray(X), self.feature, self.threshold, self.left, self.right, self.nan_child,
                 self.zero_default, self.leaf_value, self.roots, out)
        return out

    def warm(self) -> None:
        """Compile (or load the cached compiled) loop now, off the request path, for float64 input: what
        ``LightGBMRanker.score`` passes (float32 input compiles on its first use)."""
        self.predict(np.zeros((1, self.n_features), dtype=np.float64))


@numba.njit(cache=True, nogil=True)
def _predict(X: np.ndarray, feature: np.ndarray, threshold: np.ndarray, left: np.ndarray, right: np.ndarray,
             nan_child: np.ndarray, zero_default: np.ndarray, leaf_value: np.ndarray, roots: np.ndarray,
             out: np.ndarray) -> None:  # pragma: no cover - compiled; tested through Forest.predict
    for r in range(X.shape[0]):
        total = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            while node >= 0:
                v = float(X[r, feature[node]])
                if -ZERO_THRESHOLD <= v <= ZERO_THRESHOLD:
                    v = 0.0
                if v != v:
                    node = nan_child[node]
                elif zero_default[node] and v == 0.0:
                    node = nan_child[node]
                elif v <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            total += leaf_value[~node]
        out[r] = total
