"""The FAISS wrapper returns the same top-k as brute-force numpy, and round-trips to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from offline.ann import ANNConfig, ItemIndex


def _brute(items: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    s = queries @ items.T
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


@pytest.fixture()
def vectors() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(500, 16)).astype(np.float32), rng.normal(size=(20, 16)).astype(np.float32)


def test_flat_index_equals_brute_force(vectors: tuple[np.ndarray, np.ndarray]) -> None:
    items, queries = vectors
    index = ItemIndex.build(items)
    assert index.kind == "flat" and len(index) == 500
    res = index.search(queries, 10)
    assert np.array_equal(res.ids, _brute(items, queries, 10))
    assert np.allclose(res.scores, np.sort(queries @ items.T, axis=1)[:, ::-1][:, :10], atol=1e-4)


def test_hnsw_index_above_threshold_matches_brute_force(vectors: tuple[np.ndarray, np.ndarray]) -> None:
    items, queries = vectors
    index = ItemIndex.build(items, config=ANNConfig(hnsw_threshold=100, ef_search=256))
    assert index.kind == "hnsw"
    res = index.search(queries, 10)
    exact = _brute(items, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(res.ids, exact)])
    assert recall >= 0.95


def test_custom_ids_and_added_items(vectors: tuple[np.ndarray, np.ndarray]) -> None:
    items, queries = vectors
    index = ItemIndex.build(items[:400], ids=np.arange(400) + 1000)
    index.add(items[400:], np.arange(400, 500) + 1000)
    assert np.array_equal(index.search(queries, 5).ids, _brute(items, queries, 5) + 1000)
    with pytest.raises(ValueError, match="dimension"):
        index.add(np.zeros((1, 3)), [1])


def test_save_load_native_format(vectors: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    items, queries = vectors
    for cfg in (ANNConfig(), ANNConfig(hnsw_threshold=10)):
        index = ItemIndex.build(items, config=cfg)
        path = tmp_path / f"{index.kind}.faiss"
        index.save(path)
        loaded = ItemIndex.load(path)
        assert loaded.kind == index.kind and len(loaded) == len(index)
        assert np.array_equal(loaded.search(queries, 10).ids, index.search(queries, 10).ids)
        assert path.read_bytes()[:4] != b"\x80\x04\x95"[:4]  # not a pickle
