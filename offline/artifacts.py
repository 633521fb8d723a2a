"""Write one training run's artifacts (no pickle anywhere).

    model.txt          LightGBM text model (truncated at the best iteration)
    retrieval.pt       the retrieval model: torch state (plain tensors), read with weights_only=True
    items.faiss        FAISS native index over the unit item vectors; ids = row numbers
    item_vectors.npy   float32 (n_items, d) unit vectors (np.save, allow_pickle=False on load)
    item_ids.json      item ids in row order
    user_vectors.npy   float32 (n_users, d) unit vectors
    user_ids.json      user ids in row order

The item files are what ``serving.item_index.ItemVectors.load`` reads from a version directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from offline.ann import ANNConfig, ItemIndex
from offline.models.base import FactorModel

MODEL_FILE = "model.txt"


def unit(v: np.ndarray) -> np.ndarray:
    v = np.ascontiguousarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(v / np.where(n > 0, n, 1.0), dtype=np.float32)


def write_artifacts(out: Path, model_text: str, retrieval: FactorModel, item_ids: Sequence[str],
                    user_ids: Sequence[str], ann: ANNConfig = ANNConfig()) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {MODEL_FILE: out / MODEL_FILE, "retrieval.pt": out / "retrieval.pt", "items.faiss": out / "items.faiss",
             "item_vectors.npy": out / "item_vectors.npy", "item_ids.json": out / "item_ids.json",
             "user_vectors.npy": out / "user_vectors.npy", "user_ids.json": out / "user_ids.json"}
    files[MODEL_FILE].write_text(model_text, encoding="utf-8")
    retrieval.save(files["retrieval.pt"])
    items, users = unit(retrieval.item_vectors()), unit(retrieval.user_vectors())
    ItemIndex.build(items, np.arange(len(items), dtype=np.int64), ann).save(files["items.faiss"])
    np.save(files["item_vectors.npy"], items, allow_pickle=False)
    np.save(files["user_vectors.npy"], users, allow_pickle=False)
    files["item_ids.json"].write_text(json.dumps(list(item_ids)))
    files["user_ids.json"].write_text(json.dumps(list(user_ids)))
    return files
