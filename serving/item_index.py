"""Item vectors and their FAISS index, hot-swappable without a restart.

Artifacts (a directory: ``STREAMREC_SERVING_ANN_DIR``, or the promoted model's
version directory in the registry)::

    item_ids.json      JSON list of item ids, row order of the vectors
    item_vectors.npy   float32 (n, d), loaded with allow_pickle=False (never pickle)
    items.faiss        optional prebuilt index (FAISS native format) whose ids are row numbers
    item_popularity.npy optional float32 (n,): long-window popularity (positives per item in the
                       training run's data), the ``popular`` candidate source and the cold-start order

Vectors are L2-normalised so inner product is cosine.  The index is exact
(flat) below ``hnsw_threshold`` items and HNSW above (``offline.ann``).
:meth:`IndexHolder.swap` replaces the whole :class:`ItemVectors` in one
assignment, so a request sees either the old or the new index, never a mix;
:meth:`ItemVectors.with_items` builds a copy with fresh items added.
When no artifacts exist the holder is empty and ANN sources return nothing.

TODO(streams): the per-user vectors in Redis (``vec:{ver}:user:{u}``) could replace the mean
of history vectors as the ANN query; that needs one more key in ``LiveReader.head``.
"""

from __future__ import annotations

import json
import logging
from functools import cached_property
from itertools import repeat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import faiss
import numpy as np

from offline.ann import ANNConfig, ItemIndex

log = logging.getLogger("streamrec.serving.index")

# One search thread: requests are small and concurrent; OpenMP teams spinning on a
# shared 2-core machine cost hundreds of ms at the tail.
faiss.omp_set_num_threads(1)

IDS_FILE = "item_ids.json"
VECTORS_FILE = "item_vectors.npy"
INDEX_FILE = "items.faiss"
POPULARITY_FILE = "item_popularity.npy"
POPULAR_MAX = 1000
"""Longest ``popular`` list kept (best first)."""
NEIGHBOUR_CACHE = 200_000
"""Most items whose nearest neighbours are remembered (per index version)."""
SEARCH_CACHE = 10_000
"""Most ANN results remembered (per index version) by :meth:`ItemVectors.search_seeded`."""
SEARCH_CACHE_ROWS = 2_000_000
"""Most result rows those hold in all (16 bytes each: ~32 MB); a long exclusion list asks for a longer answer."""
NEIGHBOUR_MIN = 32
"""Neighbours computed per item at least (later requests for up to this many are free)."""


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.ascontiguousarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(v / np.where(n > 0, n, 1.0), dtype=np.float32)


@dataclass(frozen=True, eq=False)
class ItemVectors:
    version: str
    ids: tuple[str, ...]
    pos: dict[str, int]
    vectors: np.ndarray  # (n, d) unit float32
    index: ItemIndex  # ids are row numbers
    _neighbours: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    popularity: np.ndarray | None = None  # (n,) long-window popularity per row, or None
    _searches: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    _searched_rows: list[int] = field(default_factory=lambda: [0], repr=False)  # rows held in ``_searches``

    @cached_property
    def popular(self) -> tuple[str, ...]:
        """Item ids with popularity > 0, most popular first (ties: lower row), at most ``POPULAR_MAX``."""
        return tuple(self.ids[r] for r in self.popular_rows.tolist())

    @cached_property
    def popular_rows(self) -> np.ndarray:
        """The rows of :attr:`popular`, in its order (int64)."""
        if self.popularity is None or len(self.popularity) != len(self.ids):
            return np.zeros(0, dtype=np.int64)
        pop = np.asarray(self.popularity, np.float64)
        order = np.lexsort((np.arange(pop.size), -pop))
        out: np.ndarray = order[pop[order] > 0][:POPULAR_MAX].astype(np.int64)
        return out

    @cached_property
    def id_rank(self) -> np.ndarray:
        """Each row's position in the sorted order of the item ids (int64): ties broken by item id, in numpy."""
        rank = np.empty(len(self.ids), dtype=np.int64)
        rank[sorted(range(len(self.ids)), key=self.ids.__getitem__)] = np.arange(len(self.ids))
        return rank

    @cached_property
    def _flat(self) -> bool:
        return self.index.kind == "flat"

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, ids: Sequence[str], vectors: np.ndarray, version: str,
              config: ANNConfig = ANNConfig(), index: ItemIndex | None = None,
              popularity: np.ndarray | None = None) -> ItemVectors:
        ids = tuple(ids)
        if len(set(ids)) != len(ids):
            raise ValueError("item ids in the ANN artifacts are not unique")
        vec = _unit(np.asarray(vectors))
        if vec.ndim != 2 or vec.shape[0] != len(ids):
            raise ValueError(f"item_vectors has shape {vec.shape}; expected ({len(ids)}, d)")
        if index is None:
            index = ItemIndex.build(vec, np.arange(len(ids), dtype=np.int64), config)
        elif len(index) != len(ids) or index.dim != vec.shape[1]:
            raise ValueError(f"{INDEX_FILE} holds {len(index)} x {index.dim}; vectors are {vec.shape}")
        pop = None
        if popularity is not None:
            pop = np.asarray(popularity, np.float32).reshape(-1)
            if pop.shape[0] != len(ids):
                raise ValueError(f"{POPULARITY_FILE} holds {pop.shape[0]} values; expected {len(ids)}")
        return cls(version, ids, {i: n for n, i in enumerate(ids)}, vec, index, popularity=pop)

    @classmethod
    def load(cls, directory: Path, version: str, config: ANNConfig = ANNConfig()) -> ItemVectors | None:
        ids_path, vec_path = directory / IDS_FILE, directory / VECTORS_FILE
        if not ids_path.is_file() or not vec_path.is_file():
            return None
        ids = json.loads(ids_path.read_text())
        vectors = np.load(vec_path, allow_pickle=False)
        index = ItemIndex.load(directory / INDEX_FILE, config.ef_search) if (directory / INDEX_FILE).is_file() else None
        pop_path = directory / POPULARITY_FILE
        pop = np.load(pop_path, allow_pickle=False) if pop_path.is_file() else None
        return cls.build(ids, vectors, version, config, index, pop)

    def with_items(self, ids: Sequence[str], vectors: np.ndarray, version: str) -> tuple[ItemVectors, int]:
        """A copy with the new ids appended (ids already present are skipped); returns (copy, added)."""
        vec = _unit(np.asarray(vectors))
        if vec.ndim != 2 or vec.shape[1] != self.dim or vec.shape[0] != len(ids):
            raise ValueError(f"expected {len(ids)} vectors of dimension {self.dim}, got shape {vec.shape}")
        keep = [j for j, i in enumerate(ids) if i not in self.pos]
        keep = list({ids[j]: j for j in keep}.values())  # last vector wins for repeated new ids
        new_ids = self.ids + tuple(ids[j] for j in keep)
        new_vec = np.vstack([self.vectors, vec[keep]]) if keep else self.vectors
        index = ItemIndex(faiss.clone_index(self.index._index), self.dim)
        if keep:
            index.add(vec[keep], np.arange(len(self.ids), len(new_ids), dtype=np.int64))
        pop = None if self.popularity is None else np.concatenate([self.popularity, np.zeros(len(keep), np.float32)])
        return ItemVectors(version, new_ids, {i: n for n, i in enumerate(new_ids)}, new_vec, index,
                           popularity=pop), len(keep)

    def popularity_share(self, item_ids: Sequence[str], at: np.ndarray | None = None) -> np.ndarray:
        """Each item's popularity over the most popular item's (in [0, 1]); 0 for unknown items or
        without a popularity artifact.  ``offline.candidate_groups.popularity_prior`` is the training twin.
        ``at``: the items' :meth:`positions`, when the caller has them already."""
        out = np.zeros(len(item_ids), dtype=np.float64)
        pop, top = self.popularity, self._popularity_max
        if pop is None or top <= 0.0:
            return out
        at = self.positions(item_ids) if at is None else at
        ok = at >= 0
        out[ok] = pop[at[ok]].astype(np.float64) / top
        return out

    @cached_property
    def _popularity_max(self) -> float:
        pop = self.popularity
        return 0.0 if pop is None or len(pop) != len(self.ids) or not len(pop) else float(pop.max())

    def positions(self, item_ids: Sequence[str]) -> np.ndarray:
        """Row of each item, -1 for items not in the index."""
        return np.fromiter(map(self.pos.get, item_ids, repeat(-1)), dtype=np.int64, count=len(item_ids))

    def rows(self, item_ids: Sequence[str], at: np.ndarray | None = None) -> np.ndarray:
        """Vectors of ``item_ids`` (zero rows for unknown items); ``at``: their :meth:`positions`, if known."""
        at = self.positions(item_ids) if at is None else at
        out: np.ndarray = self.vectors[at]
        out[at < 0] = 0.0
        return out

    def search_rows(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores), each ``(n_queries, <= k)``, best first; rows are -1 where fewer exist.

        Flat indexes are searched with one matrix product here (exact, as ``IndexFlatIP``);
        HNSW goes through FAISS."""
        q = _unit(queries)
        k = min(k, len(self.ids))
        if k <= 0 or q.shape[0] == 0:
            return np.zeros((q.shape[0], 0), dtype=np.int64), np.zeros((q.shape[0], 0), dtype=np.float32)
        if not self._flat or len(self.ids) != len(self.index):
            res = self.index.search(q, k)
            return res.ids, res.scores
        if q.shape[0] == 1:  # one query (a request): a matrix-vector product, no 2-D bookkeeping
            sim = self.vectors @ q[0]
            n = sim.shape[0]
            got = np.argpartition(sim, n - k)[n - k:] if k < n else np.arange(n)
            got_s = sim[got]
            first = np.lexsort((got, -got_s))  # best first, then lower row (FAISS's tie order)
            return got[first][None, :], got_s[first][None, :]
        sims = q @ self.vectors.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else \
            np.broadcast_to(np.arange(sims.shape[1]), sims.shape).copy()
        top_s = np.take_along_axis(sims, top, axis=1)
        order = np.lexsort((top, -top_s), axis=1)  # best first, then lower row (FAISS's tie order)
        return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_s, order, axis=1)

    def search_seeded(self, seeds: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        """``search_rows`` of the mean of the ``seeds`` rows' vectors (one query; rows, scores 1-D, without the
        -1 padding), remembered per (seeds, k): the answer depends on nothing else, and this object (one index
        version) never changes, so a user whose recent history did not change gets it without a search."""
        key = (k, *seeds)
        hit = self._searches.get(key)
        if hit is not None:
            return hit
        query = self.vectors[np.asarray(seeds, dtype=np.int64)].mean(axis=0, keepdims=True)
        rows, scores = self.search_rows(query, k)
        keep = rows[0] >= 0
        got = (rows[0][keep].astype(np.int64), scores[0][keep].astype(np.float64))
        got[0].flags.writeable = False
        got[1].flags.writeable = False
        if len(self._searches) >= SEARCH_CACHE or self._searched_rows[0] + len(got[0]) > SEARCH_CACHE_ROWS:
            self._searches.clear()
            self._searched_rows[0] = 0
        self._searches[key] = got
        self._searched_rows[0] += len(got[0])
        return got

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        rows, scores = self.search_rows(queries, k)
        return [[(self.ids[p], s) for p, s in zip(r.tolist(), sc.tolist()) if p >= 0]
                for r, sc in zip(rows, scores)]

    def neighbours(self, rows: Sequence[int], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The ``k`` nearest items of each item row (itself included), best first.  They change
        only with the index, so they are remembered per index version; misses are searched together."""
        want = min(k, len(self.ids))
        got = {r: self._neighbours.get(r) for r in rows}
        missing = [r for r, hit in got.items() if hit is None or len(hit[0]) < want]
        if missing:
            got.update(self._search_neighbours(missing, k))
        return [(got[r][0][:k], got[r][1][:k]) for r in rows]  # type: ignore[index]

    def warm_neighbours(self, rows: Sequence[int], k: int = NEIGHBOUR_MIN) -> int:
        """Compute and remember the nearest neighbours of ``rows`` (one search; thread-safe)."""
        return len(self._search_neighbours(rows, k))

    def _search_neighbours(self, rows: Sequence[int], k: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        found, scores = self.search_rows(self.vectors[np.asarray(rows, dtype=np.int64)], max(k, NEIGHBOUR_MIN))
        out = {r: (got[got >= 0], sc[got >= 0]) for r, got, sc in zip(rows, found, scores)}
        if len(self._neighbours) + len(out) > NEIGHBOUR_CACHE:
            self._neighbours.clear()
        self._neighbours.update(out)
        return out

    def neighbours_cached(self) -> int:
        return len(self._neighbours)


class IndexHolder:
    """The current :class:`ItemVectors` (or None); replaced atomically."""

    def __init__(self) -> None:
        self.current: ItemVectors | None = None
        self.source: tuple[object, ...] | None = None  # what the current one was loaded from

    def swap(self, new: ItemVectors | None, source: tuple[object, ...] | None = None) -> None:
        self.current = new
        self.source = source


def artifact_signature(directory: Path) -> tuple[object, ...] | None:
    """A cheap change detector for an artifact directory (mtime and size of its files)."""
    parts: list[object] = [str(directory)]
    for name in (IDS_FILE, VECTORS_FILE, INDEX_FILE, POPULARITY_FILE):
        try:
            st = (directory / name).stat()
        except FileNotFoundError:
            if name in (IDS_FILE, VECTORS_FILE):
                return None
            continue
        parts += [name, st.st_mtime_ns, st.st_size]
    return tuple(parts)


def write_artifacts(directory: Path, ids: Sequence[str], vectors: np.ndarray) -> None:
    """Write item_ids.json + item_vectors.npy (what the trainer or a test publishes)."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{VECTORS_FILE}.tmp.npy"
    np.save(tmp, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    (directory / f".{IDS_FILE}.tmp").write_text(json.dumps(list(ids)))
    tmp.replace(directory / VECTORS_FILE)
    (directory / f".{IDS_FILE}.tmp").replace(directory / IDS_FILE)
