"""Every answer becomes an Impression on the impressions topic, with the features as served."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from schemas.events import Impression
from serving.impressions import restore_missing
from serving.main import create_app
from serving.scoring import RETRIEVAL
from streamrec.kafka import ensure_topics
from streamrec.settings import Settings
from tests.integration.serving_support import seed_state, two_category_catalogue, with_serving
from tests.integration.test_ingest import read_topic

pytestmark = pytest.mark.integration


def test_impression_on_topic_with_features_as_served(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    asyncio.run(ensure_topics(settings))
    a, b = two_category_catalogue(tmp_path / "ann")
    seed_state(rclient, settings.namespace, a + b, ["A"] * len(a) + ["B"] * len(b), {"viewer": [a[0]]})
    s = with_serving(settings, tmp_path, serving_ann_dir=tmp_path / "ann")
    with TestClient(create_app(s)) as api:
        resp = api.post("/recommend", json={"user_id": "viewer", "k": 7, "explain": True}).json()
    values = asyncio.run(read_topic(settings, settings.topic_impressions, 1))
    assert len(values) == 1
    imp = Impression.model_validate(orjson.loads(values[0]))
    assert imp.request_id == resp["request_id"] and imp.user_id == "viewer"
    assert imp.item_ids == [i["item_id"] for i in resp["items"]]
    assert imp.model_version == resp["model_version"]
    assert imp.feature_names is not None and imp.features is not None
    assert len(imp.features) == 7 and all(len(row) == len(imp.feature_names) for row in imp.features)
    served = restore_missing(imp.features)
    col = imp.feature_names.index(RETRIEVAL)
    np.testing.assert_allclose(served[:, col], [i["explain"]["retrieval_score"] for i in resp["items"]], rtol=1e-6)
