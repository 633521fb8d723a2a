"""FAISS inner-product index over any factor model's item vectors.

Exact (``IndexFlatIP``) below ``hnsw_threshold`` items, HNSW (``IndexHNSWFlat`` with
inner-product metric) above; both wrapped in an ``IndexIDMap2`` so search returns
the caller's item ids (int64).  Saved and loaded with FAISS's own format
(``faiss.write_index`` / ``faiss.read_index``), never pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ANNConfig:
    hnsw_threshold: int = 50_000  # catalogues with at least this many items use HNSW
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 128


@dataclass(frozen=True)
class SearchResult:
    ids: I64  # (n_queries, k), -1 where fewer than k items exist
    scores: F32  # (n_queries, k) inner products, best first


class ItemIndex:
    def __init__(self, index: faiss.Index, dim: int) -> None:
        self._index = index
        self.dim = dim

    @staticmethod
    def build(
        item_vectors: npt.ArrayLike,
        ids: npt.ArrayLike | None = None,
        config: ANNConfig = ANNConfig(),
        expected_size: int | None = None,
    ) -> ItemIndex:
        """Index ``item_vectors`` (n, dim) under ``ids`` (default 0..n-1).

        ``expected_size`` picks the index type when more items will be added later.
        """
        vectors = _as_matrix(item_vectors)
        dim = vectors.shape[1]
        size = max(len(vectors), expected_size or 0)
        inner: faiss.Index
        if size >= config.hnsw_threshold:
            hnsw = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = config.ef_construction
            hnsw.hnsw.efSearch = config.ef_search
            inner = hnsw
        else:
            inner = faiss.IndexFlatIP(dim)
        index = ItemIndex(faiss.IndexIDMap2(inner), dim)
        index.add(vectors, np.arange(len(vectors), dtype=np.int64) if ids is None else ids)
        return index

    @property
    def kind(self) -> str:
        inner = faiss.downcast_index(self._index.index)  # type: ignore[attr-defined]
        return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, item_vectors: npt.ArrayLike, ids: npt.ArrayLike) -> None:
        vectors = _as_matrix(item_vectors)
        id_arr = np.ascontiguousarray(np.asarray(ids, dtype=np.int64))
        if vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {vectors.shape[1]} but the index holds dimension {self.dim}")
        if len(id_arr) != len(vectors):
            raise ValueError(f"got {len(id_arr)} ids for {len(vectors)} vectors")
        self._index.add_with_ids(vectors, id_arr)

    def search(self, queries: npt.ArrayLike, k: int) -> SearchResult:
        q = _as_matrix(queries)
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {q.shape[1]} but the index holds dimension {self.dim}")
        scores, ids = self._index.search(q, k)
        return SearchResult(ids=ids.astype(np.int64), scores=scores.astype(np.float32))

    def save(self, path: Path) -> None:
        """Atomic write in FAISS's native format."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        faiss.write_index(self._index, str(tmp))
        tmp.replace(path)

    @staticmethod
    def load(path: Path, ef_search: int | None = None) -> ItemIndex:
        index = faiss.read_index(str(path))
        inner = faiss.downcast_index(index.index) if hasattr(index, "index") else None
        if inner is None:
            raise ValueError(f"{path} is not an ItemIndex (expected an IndexIDMap2 around flat/HNSW)")
        if ef_search is not None and isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = ef_search
        return ItemIndex(index, int(index.d))


def _as_matrix(x: npt.ArrayLike) -> F32:
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D (n, dim) array, got shape {arr.shape}")
    return arr
