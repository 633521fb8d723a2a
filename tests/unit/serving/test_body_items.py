"""POST /events body parsing: the element limit is the configured one, not the record's."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest
from fastapi import HTTPException

from schemas.codec import MAX_BATCH_EVENTS, Rejection
from serving.routes_events import _check, body_items

DEEP = b'{"a":' * 1024 + b"1" + b"}" * 1024  # parses alone, one level too deep inside an array
TOO_DEEP = b'{"a":' * 3000 + b"1" + b"}" * 3000  # does not parse at all


def _click(i: int) -> bytes:
    return orjson.dumps({"type": "click", "event_id": f"e{i}", "user_id": "u", "item_id": "i"})


def _array(n_good: int, deep_at: int, deep: bytes = DEEP) -> bytes:
    elems = [_click(i) for i in range(n_good)]
    elems.insert(deep_at, deep)
    return b"[" + b",".join(elems) + b"]"


def test_a_deep_event_in_a_batch_larger_than_a_record_is_refused_alone() -> None:
    n = MAX_BATCH_EVENTS + 500  # an operator raised STREAMREC_MAX_BATCH_EVENTS above a record's size
    now = datetime.now(timezone.utc)
    for deep in (DEEP, TOO_DEEP):
        items = body_items(_array(n, deep_at=700, deep=deep), max_events=n + 1)
        assert len(items) == n + 1
        refused = items[700] if isinstance(items[700], Rejection) else _check(items[700], now)
        assert isinstance(refused, Rejection) and "nested too deeply" in refused.reason
        good = items[:700] + items[701:]
        assert [x["event_id"] for x in good] == [f"e{i}" for i in range(n)]


def test_too_many_events_is_413_even_when_one_is_too_deep() -> None:
    for body in (_array(9, deep_at=3), b"[" + b",".join(_click(i) for i in range(10)) + b"]"):
        with pytest.raises(HTTPException) as got:
            body_items(body, max_events=5)
        assert got.value.status_code == 413 and "limit is 5" in str(got.value.detail)


def test_a_body_that_is_not_json_is_400() -> None:
    for body in (b"not json", b"[" + _click(0) + b", nope]", b"[" + TOO_DEEP + b","):
        with pytest.raises(HTTPException) as got:
            body_items(body, max_events=1000)
        assert got.value.status_code == 400


def test_one_object_is_one_item() -> None:
    assert body_items(_click(3), max_events=1) == [orjson.loads(_click(3))]
