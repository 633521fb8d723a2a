"""Label rules: grade the interactions that followed an impression (pure).

Grades (higher = more relevant):

    implement 6 > save 5 > share or rate >= high_rating 4 > click 3
    > view with dwell >= long_view_ms 2 > shorter view or low rate 1 > nothing 0
    dismiss -1 (explicit negative)

An interaction is attributed to an impression when it is by the same user, on
an impressed item, and ``impression.ts <= ts <= impression.ts + window(type)``
(30 minutes by default, configurable per type).  An item's grade is the maximum
over its attributed interactions; with ``dismiss_overrides`` (default) any
attributed dismiss makes it -1.  LambdaRank needs non-negative labels, so each
row also carries ``relevance = max(grade, 0)``; trainers that want the negative
can use ``grade`` (e.g. shifted by +1).  Once ``window_closed`` is true the
impression's rows are final; items nobody touched get grade 0.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from types import MappingProxyType
from typing import Iterable, Mapping

from schemas.events import Impression, InteractionEvent, Rate, View
from streams.features.keys import LABEL_COUNTS
from streams.writes import Write, hincrby


class Grade(IntEnum):
    DISMISS = -1
    NOTHING = 0
    SHORT_VIEW = 1
    LONG_VIEW = 2
    CLICK = 3
    SHARE_OR_HIGH_RATE = 4
    SAVE = 5
    IMPLEMENT = 6


FIXED_GRADES: Mapping[str, Grade] = MappingProxyType({
    "implement": Grade.IMPLEMENT, "save": Grade.SAVE, "share": Grade.SHARE_OR_HIGH_RATE,
    "click": Grade.CLICK, "dismiss": Grade.DISMISS,
})


@dataclass(frozen=True, slots=True)
class LabelConfig:
    window_s: float = 30 * 60.0
    window_by_type: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    long_view_ms: int = 30_000
    high_rating: int = 4
    low_rate_grade: Grade = Grade.SHORT_VIEW
    dismiss_overrides: bool = True

    def window_for(self, type_: str) -> timedelta:
        return timedelta(seconds=self.window_by_type.get(type_, self.window_s))

    @property
    def max_window(self) -> timedelta:
        return timedelta(seconds=max([self.window_s, *self.window_by_type.values()]))


DEFAULT_LABELS = LabelConfig()


@dataclass(frozen=True, slots=True)
class TrainingRow:
    """One impressed item: the features as served, its label, its query group."""

    group_id: str
    user_id: str
    item_id: str
    position: int
    model_version: str
    impression_ts: datetime
    feature_names: tuple[str, ...] | None
    features: tuple[float, ...] | None
    grade: int
    relevance: int


def grade(event: InteractionEvent, cfg: LabelConfig = DEFAULT_LABELS) -> int:
    if isinstance(event, View):
        return int(Grade.LONG_VIEW if event.dwell_ms >= cfg.long_view_ms else Grade.SHORT_VIEW)
    if isinstance(event, Rate):
        return int(Grade.SHARE_OR_HIGH_RATE if event.rating >= cfg.high_rating else cfg.low_rate_grade)
    return int(FIXED_GRADES[event.type])


def combine(grades: Iterable[int], cfg: LabelConfig = DEFAULT_LABELS) -> int:
    """The item's grade from the grades of its attributed interactions."""
    gs = list(grades)
    if not gs:
        return int(Grade.NOTHING)
    if cfg.dismiss_overrides and Grade.DISMISS in gs:
        return int(Grade.DISMISS)
    return max(gs)


def attributable(imp: Impression, event: InteractionEvent, cfg: LabelConfig = DEFAULT_LABELS) -> bool:
    return (event.user_id == imp.user_id and event.item_id in imp.item_ids
            and imp.ts <= event.ts <= imp.ts + cfg.window_for(event.type))


def closes_at(imp: Impression, cfg: LabelConfig = DEFAULT_LABELS) -> datetime:
    return imp.ts + cfg.max_window


def window_closed(imp: Impression, now: datetime, cfg: LabelConfig = DEFAULT_LABELS) -> bool:
    """True once no later interaction can change the impression's labels.

    ``now`` is the event-time watermark (the latest event time the worker has
    seen), never the wall clock.
    """
    return now > closes_at(imp, cfg)


def join(imp: Impression, interactions: Iterable[InteractionEvent],
         cfg: LabelConfig = DEFAULT_LABELS) -> list[TrainingRow]:
    """One row per distinct impressed item (first position), in ranked order."""
    per_item: dict[str, list[int]] = {}
    for ev in interactions:
        if attributable(imp, ev, cfg):
            per_item.setdefault(ev.item_id, []).append(grade(ev, cfg))
    names = tuple(imp.feature_names) if imp.feature_names is not None else None
    rows: list[TrainingRow] = []
    seen: set[str] = set()
    for pos, item in enumerate(imp.item_ids):
        if item in seen:
            continue
        seen.add(item)
        feats = None
        if imp.features is not None and pos < len(imp.features):
            feats = tuple(float(x) for x in imp.features[pos])
        g = combine(per_item.get(item, []), cfg)
        rows.append(TrainingRow(imp.request_id, imp.user_id, item, pos, imp.model_version, imp.ts,
                                names, feats, g, max(g, 0)))
    return rows


def label_count_writes(rows: Iterable[TrainingRow]) -> list[Write]:
    """Counters of emitted rows per grade (``labels:counts``), one write per grade."""
    counts = Counter(r.grade for r in rows)
    return [hincrby(LABEL_COUNTS, f"grade:{g}", n) for g, n in sorted(counts.items())]
