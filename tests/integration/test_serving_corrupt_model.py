"""Fault (e): the promoted model artifact is truncated on disk. Serving refuses it and keeps answering
with the previous model; no request fails."""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from bench.serve_data import publish_model
from offline.registry import ModelRegistry
from serving.main import create_app
from streamrec.settings import Settings
from tests.integration.serving_support import seed_state, two_category_catalogue, with_serving

pytestmark = pytest.mark.integration


def test_truncated_promoted_model_is_refused_and_previous_keeps_serving(
    settings: Settings, rclient: redis.Redis, tmp_path: Path
) -> None:
    a, b = two_category_catalogue(tmp_path / "ann")
    seed_state(rclient, settings.namespace, a + b, ["A"] * len(a) + ["B"] * len(b), {"u": [a[0], b[0]]})
    now = datetime.now(timezone.utc)
    root = tmp_path / "models"
    v1 = publish_model(root, tmp_path / "w1", now, seed=1, rounds=20)
    s = with_serving(settings, tmp_path, serving_ann_dir=tmp_path / "ann")
    with TestClient(create_app(s)) as api:
        first = api.post("/recommend", json={"user_id": "u", "k": 5})
        assert first.status_code == 200 and first.json()["model_version"] == v1
        # a second model version lands with its artifact truncated on disk, and CURRENT points at it
        # (built elsewhere and copied in, so serving can never see it whole)
        other = tmp_path / "elsewhere"
        v2 = publish_model(other, tmp_path / "w2", now + timedelta(seconds=5), seed=2, rounds=20)
        shutil.copytree(other / "versions" / v2, root / "versions" / v2)
        model = next(p for p in (root / "versions" / v2).rglob("model.txt"))
        data = model.read_bytes()
        model.write_bytes(data[: len(data) // 3])
        tmp = root / "CURRENT.tmp"
        tmp.write_text(v2)
        os.replace(tmp, root / "CURRENT")
        reg = ModelRegistry(root)
        assert reg.current() == v2
        deadline = time.monotonic() + 3 * max(1.0, s.serving_reload_interval_s) + 5
        seen: set[str] = set()
        while time.monotonic() < deadline:
            r = api.post("/recommend", json={"user_id": "u", "k": 5})
            assert r.status_code == 200, r.text
            body = r.json()
            assert not body["degraded"]
            seen.add(body["model_version"])
            time.sleep(0.1)
        assert seen == {v1}, seen  # the truncated v2 was never served
    # and the registry itself refuses to load it
    from offline.registry import CorruptVersion, load_ranker

    with pytest.raises(CorruptVersion):
        load_ranker(reg, v2)
