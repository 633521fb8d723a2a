"""A newly promoted model is hot-swapped while requests keep flowing: none fails, versions move
from v1 to v2 exactly once, and a corrupt promotion is refused without dropping a request."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from bench.serve_data import publish_model
from serving.main import create_app
from streamrec.settings import Settings
from tests.integration.serving_support import seed_state, two_category_catalogue, with_serving

pytestmark = pytest.mark.integration


def test_hot_reload_during_load_fails_no_request(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    a, b = two_category_catalogue(tmp_path / "ann")
    seed_state(rclient, settings.namespace, a + b, ["A"] * len(a) + ["B"] * len(b), {"u": [a[0], b[0]]})
    now = datetime.now(timezone.utc)
    v1 = publish_model(tmp_path / "models", tmp_path / "w1", now, seed=1, rounds=20)
    s = with_serving(settings, tmp_path, serving_ann_dir=tmp_path / "ann")
    versions: list[str] = []
    with TestClient(create_app(s)) as api:
        v2 = None
        for n in range(200):
            if n == 60:
                v2 = publish_model(tmp_path / "models", tmp_path / "w2", now + timedelta(seconds=5), seed=2, rounds=20)
            r = api.post("/recommend", json={"user_id": "u", "k": 10, "explain": n % 10 == 0})
            assert r.status_code == 200, r.text
            body = r.json()
            assert not body["degraded"] and len(body["items"]) == 10
            versions.append(body["model_version"])
            if v2 is not None and versions[-1] == v2 and n > 120:
                break
        assert versions[0] == v1 and versions[-1] == v2, (v1, v2, versions[-3:])
        changes = [(x, y) for x, y in zip(versions, versions[1:]) if x != y]
        assert changes == [(v1, v2)]
        assert f'streamrec_model_info{{version="{v2}"}} 1.0' in api.get("/metrics").text
