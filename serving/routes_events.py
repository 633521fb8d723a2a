"""POST /events: validate, then produce to Kafka (acks=all, idempotent producer)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import orjson
from aiokafka.errors import KafkaError
from fastapi import APIRouter, HTTPException, Request

from schemas.codec import MAX_EVENT_BYTES, Rejection, encode, validate_obj
from serving.deps import ApiKey, State
from serving.models import EventError, IngestResponse
from serving.watermark import encode_token
from streamrec.errors import ServiceUnavailable
from streamrec.publisher import event_key

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
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise HTTPException(400, f"body is not valid JSON: {err}") from err
    items = parsed if isinstance(parsed, list) else [parsed]
    if len(items) > s.max_batch_events:
        raise HTTPException(413, f"{len(items)} events in one request; the limit is {s.max_batch_events}")
    now = datetime.now(timezone.utc)
    errors: list[EventError] = []
    accepted = []
    for i, obj in enumerate(items):
        raw = orjson.dumps(obj) if not isinstance(obj, dict) else b""
        if isinstance(obj, dict) and len(orjson.dumps(obj)) > MAX_EVENT_BYTES:
            errors.append(EventError(index=i, event_id=None, reason=f"event is larger than {MAX_EVENT_BYTES} bytes"))
            continue
        res = validate_obj(obj, now, raw)
        if isinstance(res, Rejection):
            errors.append(EventError(index=i, event_id=res.event_id, reason=res.reason))
        else:
            accepted.append(res)
    marks: dict[int, int] = {}
    if accepted:
        try:
            producer = await state.producer()
            futs = [await producer.send(s.topic_events, key=event_key(e), value=encode(e)) for e in accepted]
            for md in await asyncio.wait_for(asyncio.gather(*futs), 30):
                if marks.get(md.partition, -1) < md.offset + 1:
                    marks[md.partition] = md.offset + 1
        except (ServiceUnavailable, KafkaError, asyncio.TimeoutError) as err:
            raise HTTPException(503, f"Kafka is unavailable, nothing was accepted; retry later ({err})") from err
    return IngestResponse(accepted=len(accepted), rejected=len(errors), errors=errors, watermark=encode_token(marks))
