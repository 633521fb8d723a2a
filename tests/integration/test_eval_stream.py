"""`streamrec eval stream` end to end on a tiny slice: real broker, worker, Redis, training and API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamrec.eval_stream import run_eval_stream
from streamrec.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_tiny_stream_scores_three_systems_on_the_same_queries(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    s = Settings().model_copy(update={"state_dir": tmp_path / "state"})
    result = run_eval_stream(s, out, limit=1200, chunk=200, retrain_every=1.0, concurrency=2)
    assert json.loads(out.read_text())["systems"] == result["systems"]
    systems = result["systems"]
    assert set(systems) == {"trending", "offline", "full"}
    n = {m["n"] for m in systems.values()}
    assert len(n) == 1 and n.pop() > 50  # the same query set for all three
    for m in systems.values():
        assert 0.0 <= m["ndcg@10"] <= m["hr@10"] <= 1.0
    full = result["full_responses"]
    assert full["errors"] == 0 and full["requests"] == systems["full"]["n"]
    assert len(result["retrains"]) == 1 and result["retrains"][0]["at_event"] == 600
    assert sum(seg["full"]["n"] for seg in result["segments"].values()) == systems["full"]["n"]
