"""Wire codec: orjson bytes <-> validated events, with a reason for every rejection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import base64

import orjson
from pydantic import ValidationError

from schemas.events import EVENT_ADAPTER, MAX_FUTURE_SKEW, Event
from schemas.json_array import split_array

MAX_EVENT_BYTES = 64 * 1024
MAX_IMPRESSION_BYTES = 1024 * 1024  # impressions carry the features as served
MAX_RECORD_BYTES = 1024 * 1024  # a batch record (envelope) as a whole
MAX_BATCH_EVENTS = 1000


@dataclass(frozen=True)
class Rejection:
    """Why a record was refused; ``raw`` keeps the original bytes for the dead-letter topic."""

    reason: str
    raw: bytes
    event_id: str | None = None


def describe_errors(err: ValidationError, limit: int = 8) -> str:
    parts = []
    for e in err.errors()[:limit]:
        loc = ".".join(str(x) for x in e["loc"]) or "<event>"
        parts.append(f"{loc}: {e['msg']}")
    more = len(err.errors()) - limit
    if more > 0:
        parts.append(f"(+{more} more)")
    return "; ".join(parts)


def validate_obj(obj: Any, now: datetime, raw: bytes = b"") -> Event | Rejection:
    """Validate an already-decoded JSON value against the event contract."""
    if not isinstance(obj, dict):
        return Rejection(f"event must be a JSON object, got {type(obj).__name__}", raw)
    ev_id = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
    t = obj.get("type")
    if not isinstance(t, str):
        return Rejection("type: missing or not a string", raw, ev_id)
    try:
        return EVENT_ADAPTER.validate_python(
            obj, context={"now": now, "max_future_skew": MAX_FUTURE_SKEW}
        )
    except ValidationError as err:
        return Rejection(describe_errors(err), raw, ev_id)
    except (ValueError, TypeError, OverflowError) as err:  # defensive: never crash on input
        return Rejection(f"invalid event: {err}", raw, ev_id)


def decode(raw: bytes, now: datetime) -> Event | Rejection:
    """Bytes from Kafka or HTTP -> a validated event, or a rejection with its reason.

    Events are limited to ``MAX_EVENT_BYTES``, except impressions (written by serving
    with the features as served: 100 items x 70 features exceed 64 KiB), which may
    take up to ``MAX_IMPRESSION_BYTES``."""
    if len(raw) > MAX_IMPRESSION_BYTES:
        return Rejection(f"event is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES}", raw)
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return Rejection(f"not valid JSON: {err}", raw)
    if len(raw) > MAX_EVENT_BYTES and not (isinstance(obj, dict) and obj.get("type") == "impression"):
        return Rejection(f"event is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES}", raw)
    return validate_obj(obj, now, raw)


def decode_record(raw: bytes, now: datetime) -> list[Event | Rejection]:
    """A Kafka record -> its events, in order.

    A record is either one event (a JSON object) or a *batch record*: a JSON array of
    1 to ``MAX_BATCH_EVENTS`` event objects (``encode_batch``), which producers use to
    cut per-record overhead.  Each element is validated on its own, so one bad event
    in a batch is rejected alone (its own bytes kept for the dead-letter topic).  An
    array that is not a list of objects, or too long or large, is one rejection.
    """
    if raw[:1] != b"[":
        return [decode(raw, now)]
    if len(raw) > MAX_RECORD_BYTES:
        return [Rejection(f"batch record is {len(raw)} bytes; the limit is {MAX_RECORD_BYTES}", raw)]
    try:
        arr: list[Any] = orjson.loads(raw)
        own: list[bytes] | None = None
    except orjson.JSONDecodeError as err:
        split = split_too_deep(raw, err)
        if split is None:
            return [Rejection(f"not valid JSON: {err}", raw)]
        arr, own = split
    if not arr or len(arr) > MAX_BATCH_EVENTS or not all(isinstance(x, (dict, Rejection)) for x in arr):
        return [Rejection(f"a batch record must be a JSON array of 1 to {MAX_BATCH_EVENTS} event objects", raw)]
    out: list[Event | Rejection] = []
    for n, obj in enumerate(arr):
        res = obj if isinstance(obj, Rejection) else validate_obj(obj, now)
        if isinstance(res, Rejection) and not res.raw:
            res = Rejection(res.reason, own[n] if own is not None else _own_bytes(obj), res.event_id)
        out.append(res)
    return out


def _own_bytes(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError):
        return b""  # nested too deeply to re-encode


def split_too_deep(raw: bytes, err: orjson.JSONDecodeError,
                   limit: int | None = MAX_BATCH_EVENTS) -> tuple[list[Any], list[bytes]] | None:
    """A JSON array orjson refused as a whole (``err``), element by element: (values, their
    bytes), where an element nested too deeply is a ``Rejection`` of its own.  None when it is
    not valid JSON for another reason, not an array, or an array of more than ``limit``
    elements (then it stays one rejection).

    orjson stops at 1,024 levels, and the record's array is one more, so an event object
    1,024 levels deep parses alone but made its whole record (every good event in it) one
    rejection."""
    if "depth limit" not in str(err):
        return None
    elems = split_array(raw, limit)
    if not elems:
        return None
    values: list[Any] = []
    for elem in elems:
        try:
            values.append(orjson.loads(elem))
        except orjson.JSONDecodeError as err:
            if elem[:1] != b"{" or "depth limit" not in str(err):
                return None
            values.append(Rejection(f"event is nested too deeply to decode: {err}", elem))
    return values, elems


def encode_batch(events: list[Event]) -> bytes:
    """A batch record of 1 to ``MAX_BATCH_EVENTS`` events (see ``decode_record``)."""
    if not 1 <= len(events) <= MAX_BATCH_EVENTS:
        raise ValueError(f"a batch record holds 1 to {MAX_BATCH_EVENTS} events, not {len(events)}")
    return orjson.dumps([e.model_dump(mode="json", exclude_none=True) for e in events])


def encode(event: Event) -> bytes:
    """Canonical wire form of an event (orjson, UTC timestamps, no None fields)."""
    return orjson.dumps(event.model_dump(mode="json", exclude_none=True))


def dead_letter(rej: Rejection, source: str, now: datetime) -> bytes:
    """Dead-letter record: the reason plus the original bytes (latin-1 kept lossless)."""
    return orjson.dumps(
        {
            "reason": rej.reason,
            "event_id": rej.event_id,
            "source": source,
            "rejected_at": now.isoformat(),
            "original": rej.raw.decode("utf-8", errors="replace"),
            "original_b64": base64.b64encode(rej.raw).decode("ascii"),
        }
    )
