"""Redis stopped -> 200 from the cached trending list with degraded=true; Redis restarted -> normal
answers again without restarting the API.  Uses its own Redis so the shared one is untouched."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from serving.main import create_app
from streamrec import services
from streamrec.settings import Settings
from tests.integration.conftest import wait_until
from tests.integration.serving_support import seed_state, with_serving

pytestmark = pytest.mark.integration


def test_degraded_answer_while_redis_is_down_then_recovery(settings: Settings, tmp_path: Path) -> None:
    port = services.free_port()
    red = services.start_redis(port, tmp_path / "redis", aof=True, fsync="always")
    try:
        r = redis.Redis(port=port, decode_responses=True)
        items = [f"d{i}" for i in range(30)]
        seed_state(r, settings.namespace, items, [f"c{i % 3}" for i in range(30)], {"u": ["d0"]})
        s = with_serving(settings, tmp_path, redis_url=f"redis://127.0.0.1:{port}/0", serving_budget_ms=50.0)
        with TestClient(create_app(s)) as api:
            ok = api.post("/recommend", json={"user_id": "u", "k": 5}).json()
            assert ok["degraded"] is False and len(ok["items"]) == 5
            wait_until(lambda: api.get("/admin/status").json()["trending_cached"] == 30, 10, "trending cache")
            red.stop()
            for _ in range(3):
                t0 = time.perf_counter()
                down = api.post("/recommend", json={"user_id": "u", "k": 5, "exclude": ["d1"]})
                assert down.status_code == 200, down.text
                body = down.json()
                assert body["degraded"] is True and body["model_version"] == "degraded-trending"
                got = [i["item_id"] for i in body["items"]]
                assert len(got) == 5 and "d1" not in got
                assert {int(i[1:]) % 3 for i in got[:3]} == {0, 1, 2}  # still diversified by category
                assert time.perf_counter() - t0 < 1.0
            assert 'streamrec_fallbacks_total{reason="redis_down"}' in api.get("/metrics").text
            red = services.start_redis(port, tmp_path / "redis", aof=True, fsync="always")
            answers: list[dict] = []  # type: ignore[type-arg]

            def recovered() -> bool:
                answers.append(api.post("/recommend", json={"user_id": "u", "k": 5}).json())
                return answers[-1]["degraded"] is False

            # (a pooled connection the restart closed can still fail one request: poll, then check
            # the first normal answer)
            wait_until(recovered, 15, "recovery after Redis restart")
            back = answers[-1]
            assert "d0" not in [i["item_id"] for i in back["items"]]  # history is read again
    finally:
        red.stop()
