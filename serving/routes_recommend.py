"""POST /recommend: thin route; the ranking lives in serving.recommender."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, HTTPException

from serving.deps import State
from serving.models import RecommendedItem, RecommendRequest, RecommendResponse
from serving.recommender import MODEL_VERSION, trending_for_user
from streams.store import StoreUnavailable

router = APIRouter()


@router.post("/recommend", response_model=RecommendResponse)
async def recommend(req: RecommendRequest, state: State) -> RecommendResponse:
    try:
        items = await trending_for_user(
            state.store, req.user_id, req.k, req.exclude, time.time(), state.settings.trending_half_life_s
        )
    except StoreUnavailable as err:
        raise HTTPException(503, f"online store unavailable: {err}") from err
    return RecommendResponse(
        user_id=req.user_id,
        request_id=uuid.uuid4().hex,
        model_version=MODEL_VERSION,
        items=[RecommendedItem(item_id=i.item_id, score=i.score, source=i.source) for i in items],
    )
