"""The shape every feature family shares: names, writes, reads, values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from schemas.events import Event
from streams.features.config import FeatureConfig, WriteContext
from streams.store import Read
from streams.writes import Write, WriteList, WriteSink

Raw = Mapping[Read, Any]
"""Results of a batch of reads, looked up by the ``Read`` that produced them."""

Column = npt.NDArray[np.float64]

Emit = Callable[[Event, float, FeatureConfig, WriteContext, WriteSink], None]
"""(event, its time in epoch s, cfg, ctx, sink): put the event's writes into the sink."""


@dataclass(frozen=True, slots=True)
class Family:
    """One feature family.

    names(cfg)                                 feature names, in model order
    emit(event, ts_s, cfg, ctx, sink)          state changes for one validated event, into a
                                               ``WriteSink`` (``ts_s`` = ``event.ts`` in epoch s,
                                               computed once per event by the caller)
    reads(user_id, item_ids, now, cfg)         what serving fetches for these candidates
    values(raw, user_id, item_ids, now, cfg)   name -> float64 column (len(item_ids),)
    """

    name: str
    names: Callable[[FeatureConfig], tuple[str, ...]]
    emit: Emit
    reads: Callable[[str, Sequence[str], datetime, FeatureConfig], list[Read]]
    values: Callable[[Raw, str, Sequence[str], datetime, FeatureConfig], dict[str, Column]]

    def writes(self, event: Event, cfg: FeatureConfig, ctx: WriteContext) -> list[Write]:
        """The event's writes as a list (``emit`` into a ``WriteList``)."""
        return collect(self.emit, event, cfg, ctx)


def collect(emit: Emit, event: Event, cfg: FeatureConfig, ctx: WriteContext) -> list[Write]:
    out = WriteList()
    emit(event, event.ts.timestamp(), cfg, ctx, out)
    return out.writes


def broadcast(value: float, n: int) -> Column:
    return np.full(n, value, dtype=np.float64)


ReadKey = tuple[str, str, tuple[Any, ...]]
"""``(op, key, args)`` of a ``Read``: a plain tuple, hashed in C."""


class RawResults(Mapping[Read, Any]):
    """``Raw`` built straight from a batch of reads and their results (later duplicates
    win, as in ``dict(zip(reads, results))``), looked up by ``(op, key, args)`` tuples:
    no ``Read`` hashing, and :func:`by_key` is free."""

    __slots__ = ("by_key",)

    def __init__(self, reads: Sequence[Read], results: Sequence[Any]) -> None:
        self.by_key: dict[ReadKey, Any] = {(r.op, r.key, r.args): v for r, v in zip(reads, results)}

    def __getitem__(self, r: Read) -> Any:
        return self.by_key[(r.op, r.key, r.args)]

    def __iter__(self) -> Iterator[Read]:
        return (Read(op, key, args) for op, key, args in self.by_key)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.by_key)


def by_key(raw: Raw) -> dict[ReadKey, Any]:
    """``raw`` keyed by ``(op, key, args)``: the vectorised ``values`` look results up
    without building (and hashing) a ``Read`` object per candidate and key."""
    if isinstance(raw, RawResults):
        return raw.by_key
    return {(r.op, r.key, r.args): v for r, v in raw.items()}


def unique_reads(reads: Iterable[Read]) -> list[Read]:
    """``list(dict.fromkeys(reads))``, hashing C tuples instead of ``Read`` objects."""
    seen: dict[ReadKey, Read] = {}
    for r in reads:
        seen.setdefault((r.op, r.key, r.args), r)
    return list(seen.values())


def floats(values: Sequence[Any], default: float = 0.0) -> Column:
    """Stored hash values (str/bytes/number/None) -> float64 column, ``None`` -> ``default``
    (``float`` parses str and bytes exactly like ``decay.num``)."""
    return np.array([default if v is None else float(v) for v in values], dtype=np.float64)


def pow2(exponents: Column) -> Column:
    """``math.pow(2, x)`` elementwise: libm's pow, bit-identical to the scalar path
    (numpy's SIMD ``power`` may differ in the last ulp on some CPUs)."""
    return np.array([math.pow(2.0, x) for x in exponents.tolist()], dtype=np.float64)
