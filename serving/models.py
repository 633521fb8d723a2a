"""API request/response models (pydantic at the edge)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import Id


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Id
    k: int = Field(10, ge=1, le=100)
    exclude: list[Id] = Field(default_factory=list, max_length=1000)


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    source: str


class RecommendResponse(BaseModel):
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
