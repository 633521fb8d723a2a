"""An unknown user gets trending across categories; after their first event (read-your-writes via
min_watermark) the very next answer is personal."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.main import create_app
from streamrec.runtime import Child
from streamrec.settings import Settings
from tests.integration.serving_support import two_category_catalogue, with_serving

pytestmark = pytest.mark.integration


def ev(kind: str, eid: str, **kw: object) -> dict[str, object]:
    return {"type": kind, "event_id": eid, "ts": datetime.now(timezone.utc).isoformat(), **kw}


def test_unknown_user_gets_diverse_trending_then_personal_after_first_event(
    settings: Settings, worker: Child, tmp_path: Path
) -> None:
    a, b = two_category_catalogue(tmp_path / "ann")
    # a generous read-your-writes wait: the assertion is about what the answer holds once the
    # worker has applied the event, not how fast a loaded CI machine gets there
    s = with_serving(settings, tmp_path, serving_ann_dir=tmp_path / "ann", serving_watermark_timeout_s=30.0)
    worker.start()
    meta = [ev("item", f"m-{i}", item_id=i, categories=["A" if i in a else "B"]) for i in a + b]
    # other users make B items the most popular, a few A items trend too
    clicks = [ev("view", f"pop-{i}-{n}", user_id=f"o{n}", item_id=i, dwell_ms=1000) for i in b[:10] for n in range(2)]
    clicks += [ev("view", f"pop-{i}", user_id="o9", item_id=i, dwell_ms=1000) for i in a[:5]]
    with TestClient(create_app(s)) as api:
        mark = api.post("/events", json=meta + clicks).json()["watermark"]
        first = api.post("/recommend", json={"user_id": "newbie", "k": 6, "min_watermark": mark}).json()
        assert first["watermark_reached"] is True and first["cold_start"] is True
        assert first["model_version"] == "cold-start-trending"
        got = [i["item_id"] for i in first["items"]]
        assert {i[0] for i in got[:4]} == {"a", "b"}, f"cold start not diversified across categories: {got}"
        assert all(i["source"] == "trending" for i in first["items"])

        mark = api.post("/events", json=ev("click", "newbie-1", user_id="newbie", item_id=a[7]))
        mark = mark.json()["watermark"]
        nxt = api.post("/recommend", json={"user_id": "newbie", "k": 5, "min_watermark": mark,
                                           "lambda": 1.0}).json()
        assert nxt["watermark_reached"] is True and nxt["cold_start"] is False
        items = [i["item_id"] for i in nxt["items"]]
        assert a[7] not in items  # already seen
        assert all(i.startswith("a") for i in items), f"not personal: {items}"
        assert {i["source"] for i in nxt["items"]} <= {"ann", "neighbours"}
