"""Event contracts shared by apps, the stream worker, serving and offline jobs."""

from schemas.codec import Rejection, decode, encode, validate_obj
from schemas.events import (
    EVENT_ADAPTER,
    EVENT_MODELS,
    INTERACTION_TYPES,
    SCHEMA_VERSION,
    Click,
    Dismiss,
    Event,
    Implement,
    Impression,
    InteractionEvent,
    ItemMeta,
    Rate,
    Save,
    Share,
    UserMeta,
    View,
)

__all__ = [
    "EVENT_ADAPTER", "EVENT_MODELS", "INTERACTION_TYPES", "SCHEMA_VERSION", "Click", "Dismiss",
    "Event", "Implement", "Impression", "InteractionEvent", "ItemMeta", "Rate", "Rejection",
    "Save", "Share", "UserMeta", "View", "decode", "encode", "validate_obj",
]
