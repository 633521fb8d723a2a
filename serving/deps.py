"""Dependencies, declared once as Annotated aliases."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from serving.state import AppState


async def get_state(request: Request) -> AppState:
    """``async`` so FastAPI calls it inline (a plain ``def`` dependency runs in the thread pool: a thread
    round trip per request)."""
    state: AppState = request.app.state.streamrec
    return state


State = Annotated[AppState, Depends(get_state)]


async def require_api_key(state: State, x_api_key: Annotated[str | None, Header()] = None) -> None:
    keys = state.settings.api_keys
    if not keys:
        return
    if x_api_key is None:
        raise HTTPException(401, "missing X-API-Key header: send one of the keys in STREAMREC_API_KEYS")
    if not any(secrets.compare_digest(x_api_key, k.get_secret_value()) for k in keys):
        raise HTTPException(401, "X-API-Key not recognised")


ApiKey = Annotated[None, Depends(require_api_key)]
