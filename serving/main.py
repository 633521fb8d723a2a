"""The FastAPI application: assembles routers, middleware and the process-wide state, nothing else."""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import logs, routes_admin, routes_events, routes_health, routes_recommend
from serving.state import AppState
from streamrec.settings import Settings, get_settings

access = logging.getLogger("streamrec.serving.access")
LIMITED = ("/recommend", "/rank")


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    parts = []
    for e in errors:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {e.get('msg')}")
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
    return JSONResponse({"message": "; ".join(parts) or "invalid request", "detail": detail}, status_code=422)


class RequestContext:
    """Pure ASGI middleware: request id (header ``X-Request-Id`` or new) in a contextvar for the JSON
    logs, body-size limit for /recommend and /rank, request counters and one access log line."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limit = settings.serving_max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = (headers.get(b"x-request-id") or uuid.uuid4().hex.encode()).decode("latin-1")[:64]
        token = logs.request_id_var.set(rid)
        path = scope.get("path", "")
        t0 = time.perf_counter()
        status = [500]
        try:
            size = headers.get(b"content-length", b"")
            if path in LIMITED and size.isdigit() and int(size) > self.limit:
                resp = JSONResponse({"message": f"body is {int(size)} bytes; the limit is {self.limit}"},
                                    status_code=413)
                await resp(scope, receive, send)
                status[0] = 413
                return

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                    message.setdefault("headers", [])
                    message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode("latin-1"))]
                await send(message)

            await self.app(scope, receive, send_with_id)
        finally:
            if path in LIMITED:
                app = scope.get("app")
                state = getattr(app.state, "streamrec", None) if app is not None else None
                if state is not None:
                    state.metrics.requests.labels(endpoint=path, status=str(status[0])).inc()
                if access.isEnabledFor(logging.INFO):
                    access.info("request", extra={"path": path, "status": status[0],
                                                  "ms": round((time.perf_counter() - t0) * 1000, 3)})
            logs.request_id_var.reset(token)


def create_app(settings: Settings | None = None) -> FastAPI:
    s = settings or get_settings()
    logs.configure(s.serving_log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = AppState.create(s)
        app.state.streamrec = state
        await state.start()
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(title="streamrec", version="0.1.0", lifespan=lifespan)
    app.add_exception_handler(RequestValidationError, _validation_error)

    app.add_middleware(RequestContext, settings=s)
    app.include_router(routes_health.router)
    app.include_router(routes_events.router)
    app.include_router(routes_recommend.router)
    app.include_router(routes_admin.router)
    return app
