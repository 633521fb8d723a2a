"""The on-disk model registry: checksums, atomic writes, promotion, rollback and safe loading."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import lightgbm as lgb
import numpy as np
import pytest

import offline.durable_files as durable_mod
from offline.registry import (
    CorruptVersion,
    ModelMeta,
    ModelRegistry,
    NoCurrentModel,
    RegistryError,
    load_current_ranker,
)
from offline.durable_files import atomic_write

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
NAMES = ("a", "b")


def _model(tmp: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 2))
    booster = lgb.train(
        {"objective": "lambdarank", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5},
        lgb.Dataset(X, (X[:, 0] > 0).astype(int), group=[20] * 10, feature_name=list(NAMES)),
        num_boost_round=3,
    )
    path = tmp / f"model-{seed}.txt"
    booster.save_model(str(path))
    return path


def _meta(ndcg: float = 0.5) -> ModelMeta:
    return ModelMeta(
        metrics={"ndcg@5": ndcg - 0.1, "ndcg@10": ndcg, "ndcg@20": ndcg + 0.1},
        feature_names=NAMES,
        data_start=T0 - timedelta(days=7),
        data_end=T0,
        trained_at=T0,
        training_seconds=12.5,
        notes={"retrieval": "als"},
    )


@pytest.fixture()
def reg(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry")


def _publish(reg: ModelRegistry, tmp: Path, seed: int, minutes: int = 0) -> str:
    extra = tmp / f"index-{seed}.bin"
    extra.write_bytes(bytes(range(256)) * 10)
    return reg.publish({"model.txt": _model(tmp, seed), "index.faiss": extra}, _meta(), T0 + timedelta(minutes=minutes))


def test_publish_records_a_complete_manifest(reg: ModelRegistry, tmp_path: Path) -> None:
    version = _publish(reg, tmp_path, 1)
    assert version.startswith("20250301T080000Z-")
    assert reg.list_versions() == [version]
    m = reg.verify(version)
    assert m.metrics["ndcg@10"] == 0.5 and m.feature_names == list(NAMES)
    assert m.data_start == T0 - timedelta(days=7) and m.data_end == T0 and m.training_seconds == 12.5
    assert set(m.files) == {"model.txt", "index.faiss"} and all(len(e.sha256) == 64 for e in m.files.values())
    on_disk = json.loads((reg.versions_dir / version / "manifest.json").read_text())
    assert on_disk["files"]["index.faiss"]["size"] == 2560
    assert not [p for p in (reg.versions_dir / version).iterdir() if p.name.startswith(".")]  # no temp files
    assert reg.current() is None


def test_promote_then_load_current(reg: ModelRegistry, tmp_path: Path) -> None:
    with pytest.raises(NoCurrentModel, match="HeuristicRanker"):
        load_current_ranker(reg)
    version = _publish(reg, tmp_path, 1)
    reg.promote(version, T0)
    assert reg.current() == version
    ranker = load_current_ranker(reg)
    assert ranker.version == version and ranker.feature_names == NAMES
    assert ranker.score(np.zeros((3, 2))).shape == (3,)


def test_rollback_goes_back_to_the_previous_version(reg: ModelRegistry, tmp_path: Path) -> None:
    v1, v2, v3 = (_publish(reg, tmp_path, s, minutes=s) for s in (1, 2, 3))
    for v in (v1, v2, v3):
        reg.promote(v, T0)
    assert reg.rollback(T0) == v2 and reg.current() == v2
    assert load_current_ranker(reg).version == v2
    assert reg.rollback(T0) == v1 and reg.current() == v1
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        reg.rollback(T0)
    assert reg.current() == v1
    log = json.loads((reg.root / "history.json").read_text())["log"]
    assert [e["action"] for e in log] == ["promote"] * 3 + ["rollback"] * 2


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage,message", [(_truncate, "truncated"), (_flip_bit, "checksum")])
def test_damaged_artifact_is_never_promoted(reg: ModelRegistry, tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    good = _publish(reg, tmp_path, 1)
    reg.promote(good, T0)
    bad = _publish(reg, tmp_path, 2, minutes=5)
    damage(reg.versions_dir / bad / "model.txt")
    with pytest.raises(CorruptVersion, match=message):
        reg.verify(bad)
    with pytest.raises(CorruptVersion, match=f"{bad}.*model.txt"):
        reg.promote(bad, T0)
    assert reg.current() == good
    assert reg.history() == [good]


@pytest.mark.parametrize("damage", [_truncate, _flip_bit])
def test_load_refuses_a_current_model_damaged_after_promotion(reg: ModelRegistry, tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    version = _publish(reg, tmp_path, 1)
    reg.promote(version, T0)
    damage(reg.versions_dir / version / "model.txt")
    with pytest.raises(CorruptVersion, match="will not be promoted or served"):
        load_current_ranker(reg)


def test_rollback_refuses_a_corrupt_target(reg: ModelRegistry, tmp_path: Path) -> None:
    v1, v2 = _publish(reg, tmp_path, 1), _publish(reg, tmp_path, 2, minutes=1)
    reg.promote(v1, T0)
    reg.promote(v2, T0)
    _flip_bit(reg.versions_dir / v1 / "index.faiss")
    with pytest.raises(CorruptVersion, match=f"cannot roll back to {v1}"):
        reg.rollback(T0)
    assert reg.current() == v2


def test_partial_version_without_manifest_is_refused(reg: ModelRegistry, tmp_path: Path) -> None:
    version = _publish(reg, tmp_path, 1)
    (reg.versions_dir / version / "manifest.json").unlink()
    with pytest.raises(CorruptVersion, match="partial"):
        reg.promote(version, T0)
    assert reg.current() is None


def test_atomic_write_leaves_no_partial_file_on_failure(tmp_path: Path) -> None:
    dst = tmp_path / "model.txt"

    def failing() -> Iterator[bytes]:
        yield b"half of a model"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(dst, failing())
    assert list(tmp_path.iterdir()) == []

    dst.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"):
        atomic_write(dst, failing())
    assert dst.read_bytes() == b"old" and list(tmp_path.iterdir()) == [dst]


def test_publish_failing_midway_leaves_an_unpromotable_version(
    reg: ModelRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real_fsync = os.fsync

    def flaky_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # model file, its directory, then the second artifact fails
            raise OSError("simulated crash")
        real_fsync(fd)

    monkeypatch.setattr(durable_mod.os, "fsync", flaky_fsync)
    with pytest.raises(OSError, match="simulated crash"):
        _publish(reg, tmp_path, 1)
    monkeypatch.setattr(durable_mod.os, "fsync", real_fsync)
    (partial,) = reg.list_versions()
    leftovers = sorted(p.name for p in (reg.versions_dir / partial).iterdir())
    assert leftovers == ["index.faiss"]  # only the whole first file: no temp file, no manifest
    with pytest.raises(CorruptVersion, match="partial"):
        reg.promote(partial, T0)
    assert _publish(reg, tmp_path, 1) == partial  # publishing again replaces the leftovers
    reg.promote(partial, T0)


def test_bad_requests_are_explained(reg: ModelRegistry, tmp_path: Path) -> None:
    model = _model(tmp_path, 1)
    with pytest.raises(RegistryError, match="plain file name"):
        reg.publish({"../escape.txt": model}, _meta(), T0)
    with pytest.raises(RegistryError, match="model_file"):
        reg.publish({"other.txt": model}, _meta(), T0)
    with pytest.raises(RegistryError, match="unknown model version"):
        reg.promote("nope", T0)
    version = reg.publish({"model.txt": model}, _meta(), T0)
    with pytest.raises(RegistryError, match="already published"):
        reg.publish({"model.txt": model}, _meta(), T0)
    assert reg.list_versions() == [version]
