"""The shape every feature family shares: names, writes, reads, values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from schemas.events import Event
from streams.features.config import FeatureConfig, WriteContext
from streams.store import Read
from streams.writes import Write

Raw = Mapping[Read, Any]
"""Results of a batch of reads, looked up by the ``Read`` that produced them."""

Column = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Family:
    """One feature family.

    names(cfg)                                 feature names, in model order
    writes(event, cfg, ctx)                    state changes for one validated event
    reads(user_id, item_ids, now, cfg)         what serving fetches for these candidates
    values(raw, user_id, item_ids, now, cfg)   name -> float64 column (len(item_ids),)
    """

    name: str
    names: Callable[[FeatureConfig], tuple[str, ...]]
    writes: Callable[[Event, FeatureConfig, WriteContext], list[Write]]
    reads: Callable[[str, Sequence[str], datetime, FeatureConfig], list[Read]]
    values: Callable[[Raw, str, Sequence[str], datetime, FeatureConfig], dict[str, Column]]


def broadcast(value: float, n: int) -> Column:
    return np.full(n, value, dtype=np.float64)
