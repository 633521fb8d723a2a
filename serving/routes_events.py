"""POST /events: validate, then produce to Kafka (acks=all, idempotent producer)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import orjson
from aiokafka.errors import KafkaError
from fastapi import APIRouter, HTTPException, Request

from schemas.codec import MAX_EVENT_BYTES, Rejection, dead_letter, split_too_deep, validate_obj
from schemas.events import Event
from serving.deps import ApiKey, State
from serving.models import EventError, IngestResponse
from serving.watermark import encode_token
from streamrec.errors import ServiceUnavailable
from streamrec.batch_records import send_batches

router = APIRouter()


@router.post("/events", status_code=202, response_model=IngestResponse)
async def post_events(request: Request, state: State, _auth: ApiKey) -> IngestResponse:
    s = state.settings
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > s.max_body_bytes:
        raise HTTPException(413, f"body is {declared} bytes; the limit is {s.max_body_bytes} (split the batch)")
    body = await request.body()
    if len(body) > s.max_body_bytes:
        raise HTTPException(413, f"body is {len(body)} bytes; the limit is {s.max_body_bytes} (split the batch)")
    items = body_items(body, s.max_batch_events)
    now = datetime.now(timezone.utc)
    errors: list[EventError] = []
    rejections: list[Rejection] = []
    accepted = []
    for i, obj in enumerate(items):
        res = obj if isinstance(obj, Rejection) else _check(obj, now)
        if isinstance(res, Rejection):
            errors.append(EventError(index=i, event_id=res.event_id, reason=res.reason))
            rejections.append(res)
        else:
            accepted.append(res)
    marks: dict[int, int] = {}
    if accepted or rejections:
        try:
            producer = await state.producer()
            # one batch record per partition (each user's events stay in order in their partition)
            futs = await send_batches(producer, s.topic_events, accepted, s.publish_batch)
            # rejected events also reach the dead-letter topic, so operators see every refusal in one place
            dlq = [await producer.send(s.topic_dlq, value=dead_letter(r, "http", now)) for r in rejections]
            for md in (await asyncio.wait_for(asyncio.gather(*futs, *dlq), 30))[: len(futs)]:
                if marks.get(md.partition, -1) < md.offset + 1:
                    marks[md.partition] = md.offset + 1
        except (ServiceUnavailable, KafkaError, asyncio.TimeoutError) as err:
            raise HTTPException(
                503,
                f"Kafka is unavailable; part of the batch may have been written. Retry the whole batch: "
                f"event ids make the retry safe ({err})",
            ) from err
    return IngestResponse(accepted=len(accepted), rejected=len(errors), errors=errors, watermark=encode_token(marks))


def body_items(body: bytes, max_events: int) -> list[Any]:
    """The body's events (one object, or an array of them), an element nested too deeply for
    the parser being a ``Rejection`` of its own; HTTP 400 when the body is not JSON, 413 when
    it holds more than ``max_events``."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        # an array holding an event too deep for the parser inside it: that event alone is refused;
        # no element limit here (the body's size is bounded), so an oversized array gets its 413 below
        split = split_too_deep(body, err, limit=None)
        if split is None:
            raise HTTPException(400, f"body is not valid JSON: {err}") from err
        parsed = split[0]
    items = parsed if isinstance(parsed, list) else [parsed]
    if len(items) > max_events:
        raise HTTPException(413, f"{len(items)} events in one request; the limit is {max_events}")
    return items


def _check(obj: object, now: datetime) -> Event | Rejection:
    """One element of the body: a validated event, or a Rejection with its reason and bytes."""
    try:
        raw = orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError):
        return Rejection("event is nested too deeply to be an event", b"")
    if len(raw) > MAX_EVENT_BYTES:
        return Rejection(f"event is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES}", raw)
    return validate_obj(obj, now, raw)
