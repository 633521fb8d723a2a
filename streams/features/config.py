"""Feature configuration and the write-time context (frozen dataclasses, no I/O).

Everything that changes a feature's value is here: windows, half-lives, priors,
session gap, dwell histogram edges.  Changing any of it changes the state the
writes build, so a change means a replay into a fresh namespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Mapping

from schemas.events import INTERACTION_TYPES
from streams.dwell import DwellBuckets

DEFAULT_EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)

# Ordinal code of an interaction type, roughly by engagement; used for
# ``last_interaction_type_by_user_item`` and to break ties of the packed
# (timestamp, type) value.  Must stay < TYPE_CODE_BASE.
TYPE_CODE: Mapping[str, int] = MappingProxyType(
    {"dismiss": 0, "view": 1, "click": 2, "rate": 3, "share": 4, "save": 5, "implement": 6}
)
TYPE_CODE_BASE = 8


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding event-time window made of ``length_s // bucket_s`` buckets.

    The window at time ``now`` is the bucket holding ``now`` and the
    ``n_buckets - 1`` buckets before it, so its true span is between
    ``length_s - bucket_s`` and ``length_s``.
    """

    name: str
    length_s: int
    bucket_s: int

    def __post_init__(self) -> None:
        if self.bucket_s <= 0 or self.length_s % self.bucket_s:
            raise ValueError(f"window {self.name}: length_s must be a multiple of bucket_s")

    @property
    def n_buckets(self) -> int:
        return self.length_s // self.bucket_s


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    windows: tuple[Window, ...] = (
        Window("1h", 3600, 300),
        Window("24h", 86400, 3600),
        Window("7d", 7 * 86400, 6 * 3600),
    )
    window_types: tuple[str, ...] = INTERACTION_TYPES
    # forward decay: weight of an event = type_weight * 2^((ts - epoch) / half_life)
    epoch: datetime = DEFAULT_EPOCH
    popularity_half_lives: tuple[tuple[str, float], ...] = (("1h", 3600.0), ("24h", 86400.0))
    affinity_half_life_s: float = 7 * 86400.0
    type_weights: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType(
            {"view": 1.0, "click": 2.0, "rate": 2.0, "share": 3.0, "save": 3.0,
             "implement": 5.0, "dismiss": 0.0}
        )
    )
    # Bayesian smoothing: global prior -> category prior -> item rate
    ctr_prior: float = 0.05
    implement_prior: float = 0.01
    prior_strength: float = 20.0
    # user state
    session_gap_s: float = 30 * 60.0
    recent_keep: int = 256
    category_keep: int = 100
    top_categories: int = 3
    # dwell
    long_view_ms: int = 30_000
    dwell_buckets: DwellBuckets = DwellBuckets()
    dwell_quantiles: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p90", 0.9))
    # housekeeping: TTLs bound the number of keys (window periods, user x item)
    emit_ttl: bool = True
    user_item_ttl_s: int = 90 * 86400
    _epoch_s: float = field(init=False, repr=False, compare=False, default=0.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_epoch_s", self.epoch.timestamp())  # read by every decayed write

    @property
    def epoch_s(self) -> float:
        return self._epoch_s


@dataclass(frozen=True, slots=True)
class WriteContext:
    """What the writes of one event need that the event does not carry.

    ``item_categories`` maps item id -> its categories as stored when the event
    is processed (looked up by the caller with ``context_reads``; items without
    an ItemMeta yet map to ``()``).
    """

    item_categories: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def categories(self, item_id: str) -> tuple[str, ...]:
        return self.item_categories.get(item_id, ())


EMPTY_CONTEXT = WriteContext()


def seconds(ts: datetime) -> float:
    """Epoch seconds of an aware datetime (the only clock features use)."""
    return ts.timestamp()
