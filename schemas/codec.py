"""Wire codec: orjson bytes <-> validated events, with a reason for every rejection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import base64

import orjson
from pydantic import ValidationError

from schemas.events import EVENT_ADAPTER, MAX_FUTURE_SKEW, Event

MAX_EVENT_BYTES = 64 * 1024


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
    """Bytes from Kafka or HTTP -> a validated event, or a rejection with its reason."""
    if len(raw) > MAX_EVENT_BYTES:
        return Rejection(f"event is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES}", raw)
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return Rejection(f"not valid JSON: {err}", raw)
    return validate_obj(obj, now, raw)


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
