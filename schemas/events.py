"""Versioned event models: the contract between apps and streamrec.

Every event carries ``event_id`` (the idempotency key), ``ts`` (event time,
timezone-aware, stored as UTC) and a ``type`` discriminator.  Interaction
events also carry ``user_id`` and ``item_id``.  Unknown fields are rejected.

Validation that depends on the clock (future timestamps beyond a skew bound)
takes ``now`` from the validation context, so tests never depend on the wall
clock: ``EVENT_ADAPTER.validate_python(obj, context={"now": now})``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)

SCHEMA_VERSION = 1
MAX_FUTURE_SKEW = timedelta(minutes=5)
MIN_TS = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_DWELL_MS = 24 * 3600 * 1000
MAX_LIST = 1000

Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$"),
]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64)]
AttrValue = Union[Annotated[str, StringConstraints(max_length=256)], int, float, bool]

INTERACTION_TYPES: tuple[str, ...] = (
    "view",
    "click",
    "save",
    "share",
    "rate",
    "implement",
    "dismiss",
)


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    schema_version: Literal[1] = 1
    event_id: Id
    ts: datetime

    @field_validator("ts")
    @classmethod
    def _ts_in_range(cls, v: datetime, info: ValidationInfo) -> datetime:
        if v.tzinfo is None:
            raise ValueError("ts must carry a timezone, e.g. 2024-01-01T12:00:00Z")
        v = v.astimezone(timezone.utc)
        if v < MIN_TS:
            raise ValueError("ts is before 1970-01-01")
        ctx = info.context or {}
        now = ctx.get("now")
        skew = ctx.get("max_future_skew", MAX_FUTURE_SKEW)
        if now is not None and v > now + skew:
            raise ValueError(
                f"ts {v.isoformat()} is more than {skew} in the future of the server clock"
            )
        return v


class _Interaction(_Base):
    user_id: Id
    item_id: Id


class View(_Interaction):
    type: Literal["view"] = "view"
    dwell_ms: int = Field(ge=0, le=MAX_DWELL_MS, strict=True)


class Click(_Interaction):
    type: Literal["click"] = "click"


class Save(_Interaction):
    type: Literal["save"] = "save"


class Share(_Interaction):
    type: Literal["share"] = "share"


class Rate(_Interaction):
    type: Literal["rate"] = "rate"
    rating: int = Field(ge=1, le=5, strict=True)


class Implement(_Interaction):
    type: Literal["implement"] = "implement"


class Dismiss(_Interaction):
    type: Literal["dismiss"] = "dismiss"


class ItemMeta(_Base):
    type: Literal["item"] = "item"
    item_id: Id
    categories: list[Label] = Field(default_factory=list, max_length=64)
    attributes: dict[Label, AttrValue] = Field(default_factory=dict, max_length=64)
    created_at: datetime | None = None

    @field_validator("attributes")
    @classmethod
    def _finite(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_finite(v)


class UserMeta(_Base):
    type: Literal["user"] = "user"
    user_id: Id
    attributes: dict[Label, AttrValue] = Field(default_factory=dict, max_length=64)

    @field_validator("attributes")
    @classmethod
    def _finite(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_finite(v)


class Impression(_Base):
    type: Literal["impression"] = "impression"
    user_id: Id
    request_id: Id
    item_ids: list[Id] = Field(min_length=1, max_length=MAX_LIST)
    model_version: Label
    feature_names: list[Label] | None = Field(default=None, max_length=512)
    features: list[list[float]] | None = Field(default=None, max_length=MAX_LIST)

    @field_validator("features")
    @classmethod
    def _finite_rows(cls, v: list[list[float]] | None) -> list[list[float]] | None:
        if v is not None:
            for row in v:
                if any(not math.isfinite(x) for x in row):
                    raise ValueError("features must be finite numbers (no NaN or inf)")
        return v


def _check_finite(v: dict[str, Any]) -> dict[str, Any]:
    for key, val in v.items():
        if isinstance(val, float) and not math.isfinite(val):
            raise ValueError(f"attribute {key!r} must be a finite number")
    return v


InteractionEvent = Union[View, Click, Save, Share, Rate, Implement, Dismiss]
Event = Annotated[
    Union[View, Click, Save, Share, Rate, Implement, Dismiss, ItemMeta, UserMeta, Impression],
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

EVENT_MODELS: dict[str, type[_Base]] = {
    "view": View,
    "click": Click,
    "save": Save,
    "share": Share,
    "rate": Rate,
    "implement": Implement,
    "dismiss": Dismiss,
    "item": ItemMeta,
    "user": UserMeta,
    "impression": Impression,
}
