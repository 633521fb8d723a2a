"""GET /healthz (the process), GET /readyz (Redis and Kafka answer), GET /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
import os

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from serving.deps import State

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, object]:
    return {"status": "ok", "pid": os.getpid()}


@router.get("/readyz")
async def readyz(state: State) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(state.redis.ping(), 2)
        checks["redis"] = "ok"
    except Exception as err:
        checks["redis"] = f"unavailable: {err}"
    try:
        producer = await state.producer()
        parts = await asyncio.wait_for(producer.partitions_for(state.settings.topic_events), 5)
        checks["kafka"] = "ok" if parts else "events topic missing: run `streamrec topics create`"
    except Exception as err:
        checks["kafka"] = f"unavailable: {err}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(state: State) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
