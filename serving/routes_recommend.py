"""POST /recommend and POST /rank: thin routes; the work lives in serving.pipeline.

The response models document the API (OpenAPI); the hot path writes the same JSON
(fields in model order, ``None`` fields left out as ``response_model_exclude_none``
would) with orjson directly instead of re-validating the model it just built.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Response

from serving.freshness import wait_for_watermark
from serving.cursor import BadCursor
from serving.deps import State
from serving.logs import request_id_var
from serving.models import RankRequest, RankResponse, RecommendRequest, RecommendResponse
from serving.pipeline import RecRequest, Result
from streams.store import StoreUnavailable

router = APIRouter()


def _items(res: Result) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in res.items:
        d: dict[str, Any] = {"item_id": i.item_id, "score": i.score, "source": i.source}
        if i.explain is not None:
            d["explain"] = i.explain
        out.append(d)
    return out


def _json(body: dict[str, Any], res: Result) -> Response:
    """``body`` without its None fields, as JSON, with the stage timings in ``Server-Timing``."""
    timing = ", ".join(f"{k};dur={v:.3f}" for k, v in res.timings.items())
    return Response(orjson.dumps({k: v for k, v in body.items() if v is not None}, option=orjson.OPT_SERIALIZE_NUMPY),
                    media_type="application/json", headers={"Server-Timing": timing})


@router.post("/recommend", response_model=RecommendResponse, response_model_exclude_none=True)
async def recommend(req: RecommendRequest, state: State) -> Response:
    s = state.settings
    rid = request_id_var.get() or ""
    try:
        cur = state.cursors.decode(req.cursor, req.user_id) if req.cursor else None
    except BadCursor as err:
        raise HTTPException(422, f"cursor: {err}") from err
    reached = None
    if req.min_watermark:  # read-your-writes: wait (bounded) until the worker applied those events
        try:
            reached, _lag = await wait_for_watermark(state.reader, req.min_watermark, s.serving_watermark_timeout_s)
        except ValueError as err:
            raise HTTPException(422, f"min_watermark: {err}; pass the watermark returned by POST /events") from err
        except StoreUnavailable:
            reached = False
    exclude = frozenset(req.exclude) | frozenset(req.filters.exclude) | frozenset(cur.served if cur else ())
    res = await state.pipeline.recommend(RecRequest(
        user_id=req.user_id, k=req.k, request_id=rid,
        lam=req.lambda_, explain=req.explain, exclude=exclude,
        categories_in=None if req.filters.categories_in is None else frozenset(req.filters.categories_in),
        categories_out=frozenset(req.filters.categories_out),
    ))
    next_cursor = state.cursors.next(cur, req.user_id, rid, [i.item_id for i in res.items])
    return _json({"user_id": req.user_id, "request_id": rid, "model_version": res.model_version,
                  "items": _items(res), "next_cursor": next_cursor, "degraded": res.degraded,
                  "cold_start": res.cold_start, "watermark_reached": reached}, res)


@router.post("/rank", response_model=RankResponse, response_model_exclude_none=True)
async def rank(req: RankRequest, state: State) -> Response:
    rid = request_id_var.get() or ""
    try:
        res = await state.pipeline.rank(req.user_id, list(dict.fromkeys(req.item_ids)), rid, req.explain)
    except StoreUnavailable as err:
        raise HTTPException(503, f"{err}; retry shortly, or use /recommend which degrades to trending") from err
    return _json({"user_id": req.user_id, "request_id": rid, "model_version": res.model_version,
                  "items": _items(res)}, res)
