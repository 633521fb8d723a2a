"""Paging with the cursor never repeats an item; a foreign or tampered cursor is a clear 422."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from serving.main import create_app
from streamrec.settings import Settings
from tests.integration.serving_support import seed_state, with_serving

pytestmark = pytest.mark.integration


def test_pages_never_repeat_and_cover_the_catalogue(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    items = [f"p{i}" for i in range(57)]
    seed_state(rclient, settings.namespace, items, [f"c{i % 4}" for i in range(57)], {"pager": ["p0", "p1"]})
    s = with_serving(settings, tmp_path)
    served: list[str] = []
    with TestClient(create_app(s)) as api:
        cursor = None
        for _ in range(10):
            body: dict[str, object] = {"user_id": "pager", "k": 10, "exclude": ["p2"]}
            if cursor:
                body["cursor"] = cursor
            page = api.post("/recommend", json=body).json()
            served += [i["item_id"] for i in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        assert len(served) == len(set(served)), "an item was repeated across pages"
        assert set(served) == set(items) - {"p0", "p1", "p2"}
        other = api.post("/recommend", json={"user_id": "someone", "k": 5, "cursor": cursor or "x.y"})
        assert other.status_code == 422 and "cursor" in other.json()["detail"]
        bad_k = api.post("/recommend", json={"user_id": "pager", "k": 101})
        assert bad_k.status_code == 422 and "k:" in bad_k.json()["message"]
