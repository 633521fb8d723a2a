"""Admin endpoints (API key when configured): force a hot reload, add fresh items to the ANN index."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from schemas.events import Id
from serving.deps import ApiKey, State

router = APIRouter(prefix="/admin")


class FreshItems(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_ids: list[Id] = Field(min_length=1, max_length=10_000)
    vectors: list[list[float]] = Field(min_length=1, max_length=10_000)


@router.post("/reload")
async def reload(state: State, _auth: ApiKey) -> dict[str, object]:
    return await state.reload()


@router.post("/index/items")
async def add_items(body: FreshItems, state: State, _auth: ApiKey) -> dict[str, object]:
    """Add fresh items to a copy of the ANN index and swap it in (no restart)."""
    holder = state.pipeline.index
    cur = holder.current
    if cur is None:
        raise HTTPException(409, "no ANN index is loaded yet: publish item vectors first")
    if len(body.vectors) != len(body.item_ids) or any(len(v) != cur.dim for v in body.vectors):
        raise HTTPException(422, f"send one vector of dimension {cur.dim} per item id")
    new, added = cur.with_items(body.item_ids, np.asarray(body.vectors, dtype=np.float32), cur.version + "+fresh")
    holder.swap(new, holder.source)
    state.metrics.index_items.set(len(new))
    return {"added": added, "index_items": len(new)}


@router.get("/status")
async def status(state: State, _auth: ApiKey) -> dict[str, object]:
    p = state.pipeline
    return {"model_version": p.models.current.ranker.version,
            "index_items": len(p.index.current) if p.index.current else 0,
            "degraded": not p.breaker.allow(), "impressions_waiting": len(p.impressions),
            "trending_cached": len(p.trending.items), "item_features_cached": p.fetcher.cached_count(),
            "neighbours_cached": p.index.current.neighbours_cached() if p.index.current else 0}
