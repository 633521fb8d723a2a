"""The FastAPI application: assembles routers and the process-wide state, nothing else."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI

from serving import routes_events, routes_health, routes_recommend
from serving.state import AppState
from streamrec.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    s = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.streamrec = AppState.create(s)
        try:
            yield
        finally:
            await app.state.streamrec.close()

    app = FastAPI(title="streamrec", version="0.1.0", lifespan=lifespan)
    app.include_router(routes_health.router)
    app.include_router(routes_events.router)
    app.include_router(routes_recommend.router)
    return app
