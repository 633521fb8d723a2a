"""serving.compiled: numba gets a writable cache directory, or keeps the operator's."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving import compiled


def test_keeps_the_default_locations_when_they_are_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert compiled.ensure_cache_dir(tmp_path) is None
    assert "NUMBA_CACHE_DIR" not in __import__("os").environ


def test_points_numba_at_a_private_directory_when_nothing_is_writable(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    import numba.core.config as config

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(compiled, "_writable", lambda directory: False)
    monkeypatch.setattr(compiled.tempfile, "gettempdir", lambda: str(tmp_path))
    try:
        chosen = compiled.ensure_cache_dir(tmp_path / "ro")
        assert chosen is not None and Path(chosen).parent == tmp_path and Path(chosen).is_dir()
        assert config.CACHE_DIR == chosen  # numba was imported already: it read the variable again
    finally:
        monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
        config.reload_config()
    assert config.CACHE_DIR == ""


def test_an_operators_directory_is_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(compiled, "_writable", lambda directory: False)
    assert compiled.ensure_cache_dir(tmp_path / "ro") is None
