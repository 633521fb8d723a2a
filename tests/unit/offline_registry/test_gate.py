"""The promotion gate: a worse model never replaces the current one."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import lightgbm as lgb
import numpy as np

from offline.registry import ModelMeta, ModelRegistry, gate, publish_and_gate

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)


def test_no_current_model_promotes() -> None:
    d = gate({"ndcg@10": 0.1}, None)
    assert d.promote and "no current model" in d.reason


def test_worse_model_is_refused_and_reason_says_why() -> None:
    d = gate({"ndcg@10": 0.40}, {"ndcg@10": 0.45})
    assert not d.promote
    assert "0.4000" in d.reason and "0.4500" in d.reason and "current model stays" in d.reason


def test_equal_passes_with_zero_margin_but_not_with_a_margin() -> None:
    assert gate({"ndcg@10": 0.45}, {"ndcg@10": 0.45}).promote
    assert not gate({"ndcg@10": 0.455}, {"ndcg@10": 0.45}, margin=0.01).promote
    assert gate({"ndcg@10": 0.461}, {"ndcg@10": 0.45}, margin=0.01).promote


def test_missing_or_nan_metrics_are_refused() -> None:
    assert not gate({"ndcg@5": 0.9}, None).promote
    assert not gate({"ndcg@10": math.nan}, {"ndcg@10": 0.1}).promote
    refused = gate({"ndcg@10": 0.9}, {"auc": 0.8})
    assert not refused.promote and "no recorded ndcg@10" in refused.reason


def _model_file(tmp: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 0).astype(int)
    booster = lgb.train(
        {"objective": "lambdarank", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5},
        lgb.Dataset(X, y, group=[20] * 10, feature_name=["a", "b"]),
        num_boost_round=3,
    )
    path = tmp / f"model-{seed}.txt"
    booster.save_model(str(path))
    return path


def _meta(ndcg: float) -> ModelMeta:
    return ModelMeta(
        metrics={"ndcg@10": ndcg},
        feature_names=("a", "b"),
        data_start=NOW,
        data_end=NOW,
        trained_at=NOW,
        training_seconds=1.0,
    )


def test_publish_and_gate_keeps_the_current_model(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    first, d1 = publish_and_gate(reg, {"model.txt": _model_file(tmp_path, 1)}, _meta(0.50), NOW)
    assert d1.promote and reg.current() == first
    worse, d2 = publish_and_gate(reg, {"model.txt": _model_file(tmp_path, 2)}, _meta(0.40), NOW)
    assert not d2.promote and "current model stays" in d2.reason
    assert reg.current() == first  # the candidate is stored but not promoted
    assert worse in reg.list_versions()
    better, d3 = publish_and_gate(reg, {"model.txt": _model_file(tmp_path, 3)}, _meta(0.55), NOW, margin=0.01)
    assert d3.promote and reg.current() == better
