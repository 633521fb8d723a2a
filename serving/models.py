"""API request/response models (pydantic at the edge)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import Id, Label


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    categories_in: list[Label] | None = Field(None, max_length=100, description="keep items in any of these")
    categories_out: list[Label] = Field(default_factory=list, max_length=100, description="drop items in any")
    exclude: list[Id] = Field(default_factory=list, max_length=1000, description="item ids never to return")


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    user_id: Id
    k: int = Field(10, ge=1, le=100, description="items per page (1-100)")
    exclude: list[Id] = Field(default_factory=list, max_length=1000, description="same as filters.exclude")
    filters: Filters = Field(default_factory=lambda: Filters())
    cursor: str | None = Field(None, max_length=200_000, description="next_cursor of the previous page")
    explain: bool = False
    lambda_: float | None = Field(None, alias="lambda", ge=0.0, le=1.0,
                                  description="MMR relevance/diversity trade-off; default 0.7")
    min_watermark: str | None = Field(None, max_length=4096,
                                      description="watermark from POST /events: wait until those events are applied")


class RankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Id
    item_ids: list[Id] = Field(min_length=1, max_length=1000)
    explain: bool = False


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    source: str
    explain: dict[str, Any] | None = None


class RecommendResponse(BaseModel):
    user_id: str
    request_id: str
    model_version: str
    items: list[RecommendedItem]
    next_cursor: str | None = None
    degraded: bool = False
    cold_start: bool = False
    watermark_reached: bool | None = None


class RankResponse(BaseModel):
    user_id: str
    request_id: str
    model_version: str
    items: list[RecommendedItem]


class EventError(BaseModel):
    index: int
    event_id: str | None
    reason: str


class IngestResponse(BaseModel):
    accepted: int
    rejected: int
    errors: list[EventError]
    watermark: str | None = Field(None, description="pass to /recommend as min_watermark to read your own writes")
