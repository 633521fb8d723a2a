"""The event contract: what is accepted, what is rejected and why; decode never raises."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import EVENT_MODELS, Rejection, decode, encode
from schemas.codec import MAX_EVENT_BYTES, MAX_IMPRESSION_BYTES, dead_letter
from schemas.events import Rate, View

NOW = datetime(2024, 6, 1, 12, tzinfo=timezone.utc)
BASE = {"event_id": "e1", "ts": "2024-06-01T11:00:00Z", "user_id": "u1", "item_id": "i1"}


def raw(**kw: object) -> bytes:
    return orjson.dumps({**BASE, **kw})


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "view", "dwell_ms": 1500},
        {"type": "click"},
        {"type": "save"},
        {"type": "share"},
        {"type": "rate", "rating": 5},
        {"type": "implement"},
        {"type": "dismiss"},
    ],
)
def test_every_interaction_type_round_trips(payload: dict[str, object]) -> None:
    ev = decode(raw(**payload), NOW)
    assert not isinstance(ev, Rejection), ev
    assert ev.type == payload["type"]
    again = decode(encode(ev), NOW)
    assert again == ev


def test_metadata_and_impression_events() -> None:
    item = decode(orjson.dumps({"type": "item", "event_id": "m1", "ts": "2024-01-01T00:00:00Z", "item_id": "i1",
                                "categories": ["Drama"], "attributes": {"year": 1995}}), NOW)
    assert not isinstance(item, Rejection) and item.categories == ["Drama"]
    user = decode(orjson.dumps({"type": "user", "event_id": "m2", "ts": "2024-01-01T00:00:00Z", "user_id": "u1",
                                "attributes": {"age": 30}}), NOW)
    assert not isinstance(user, Rejection)
    imp = decode(orjson.dumps({"type": "impression", "event_id": "m3", "ts": "2024-01-01T00:00:00Z", "user_id": "u1",
                               "request_id": "r1", "item_ids": ["a", "b"], "model_version": "v1"}), NOW)
    assert not isinstance(imp, Rejection) and imp.item_ids == ["a", "b"]
    assert set(EVENT_MODELS) == {"view", "click", "save", "share", "rate", "implement", "dismiss", "item", "user",
                                 "impression"}


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (raw(type="rate", rating=0), "rating"),
        (raw(type="rate", rating=6), "rating"),
        (raw(type="view", dwell_ms=-1), "dwell_ms"),
        (raw(type="click", extra_field=1), "extra_field"),
        (raw(type="click", ts="2100-01-01T00:00:00Z"), "future"),
        (raw(type="click", ts="2024-06-01T11:00:00"), "timezone"),
        (raw(type="click", user_id=123), "user_id"),
        (raw(type="click", user_id=""), "user_id"),
        (raw(type="teleport"), "type"),
        (orjson.dumps({"type": "click", "ts": "2024-06-01T11:00:00Z", "user_id": "u", "item_id": "i"}), "event_id"),
        (b"not json at all", "not valid JSON"),
        (b"[1, 2, 3]", "JSON object"),
        (b"[" * 2000 + b"]" * 2000, "JSON"),
        (orjson.dumps({**BASE, "type": "click", "user_id": "x" * 200}), "user_id"),
        (orjson.dumps({"type": "item", "event_id": "m", "ts": "2024-01-01T00:00:00Z", "item_id": "i",
                       "attributes": {"w": float("nan")}}), "attributes"),
    ],
)
def test_rejections_say_what_was_wrong(data: bytes, needle: str) -> None:
    res = decode(data, NOW)
    assert isinstance(res, Rejection)
    assert needle in res.reason, res.reason
    assert res.raw == data


def test_oversized_event_is_rejected() -> None:
    data = raw(type="click", pad="x" * MAX_EVENT_BYTES)
    res = decode(data, NOW)
    assert isinstance(res, Rejection) and "limit" in res.reason
    huge = raw(type="click", pad="x" * MAX_IMPRESSION_BYTES)
    res = decode(huge, NOW)
    assert isinstance(res, Rejection) and "limit" in res.reason


def test_an_impression_of_100_items_with_their_served_features_is_accepted() -> None:
    rows = [[0.123456789012345 + i + j for j in range(71)] for i in range(100)]
    data = orjson.dumps({"type": "impression", "event_id": "imp-1", "ts": NOW.isoformat(), "user_id": "u",
                         "request_id": "r", "model_version": "m", "item_ids": [f"i{i}" for i in range(100)],
                         "feature_names": [f"f{j}" for j in range(71)], "features": rows})
    assert len(data) > MAX_EVENT_BYTES
    res = decode(data, NOW)
    assert not isinstance(res, Rejection), res.reason


def test_clock_skew_bound_uses_the_given_now() -> None:
    soon = (NOW + timedelta(minutes=4)).isoformat()
    late = (NOW + timedelta(minutes=6)).isoformat()
    assert not isinstance(decode(raw(type="click", ts=soon), NOW), Rejection)
    assert isinstance(decode(raw(type="click", ts=late), NOW), Rejection)


def test_timestamps_are_normalised_to_utc() -> None:
    ev = decode(raw(type="click", ts="2024-06-01T13:00:00+02:00"), NOW)
    assert not isinstance(ev, Rejection)
    assert ev.ts == datetime(2024, 6, 1, 11, tzinfo=timezone.utc)


def test_dead_letter_keeps_reason_and_original_bytes() -> None:
    import base64

    data = b"\xff\xfe not utf8"
    rej = decode(data, NOW)
    assert isinstance(rej, Rejection)
    letter = orjson.loads(dead_letter(rej, "events/0/7", NOW))
    assert base64.b64decode(letter["original_b64"]) == data
    assert letter["reason"] and letter["source"] == "events/0/7"


def test_models_are_frozen() -> None:
    ev = Rate(event_id="e", ts=NOW, user_id="u", item_id="i", rating=3)
    with pytest.raises(Exception):
        ev.rating = 4  # type: ignore[misc]
    assert View(event_id="e", ts=NOW, user_id="u", item_id="i", dwell_ms=0).dwell_ms == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    res = decode(data, NOW)
    assert isinstance(res, Rejection) or res.event_id


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["type", "event_id", "ts", "user_id", "item_id", "rating", "dwell_ms", "x"]),
                       json_values, max_size=8))
def test_decode_never_raises_on_arbitrary_objects(obj: dict[str, object]) -> None:
    res = decode(orjson.dumps(obj), NOW)
    assert isinstance(res, Rejection) or res.event_id
