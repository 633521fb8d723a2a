"""Labels on the stream: buffer interactions, hold impressions open, close them by event time (pure).

State (all written atomically with the batch, so it survives SIGKILL):

* every interaction is buffered per user in ``lbl:ix:{u}`` (zset, member = JSON
  [event_id, type, item, dwell_ms or rating], score = ts); each batch trims the
  buffers it touches below ``trim_bound``: nothing an open or not yet consumed
  impression can still use is trimmed, whichever topic runs ahead, within
  ``buffer_max_s`` of event time.  Being trimmed by processing-time watermarks, the
  buffers are excluded from the state digest, like dedupe marks;
* an impression stores its event in ``lbl:imp:{u}:{req}`` (packed: streams.open_impression) and enters
  ``lbl:open`` with score ``closes_at + lateness``;
* the watermark W is event time: ``lbl:wm`` holds, per events-topic partition,
  the max event time seen in it (``p<n>`` fields, ``hmax``), and W is the
  *minimum* over all ``partitions`` of those maxima (undefined until every
  partition has been seen).  Each partition is in event-time order (one user's
  events share one), so once W passes T + window every interaction that can be
  attributed to an impression at T has been processed, however the worker or a
  replay interleaves the partitions: labels do not depend on processing order.
  An idle partition holds W back (as in Flink without idleness detection).
  When W passes an open impression's score, the impression is joined with the
  buffered interactions of its user (``streams.labels.join``: the one label
  rule), its rows are emitted, ``labels:counts`` is incremented and its state is
  deleted, all guarded by ``close:{u}:{req}`` so a re-delivered batch never
  counts a close twice.

The join happens at close time, so it does not matter whether an interaction
was processed before or after its impression (they come from different topics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import orjson

from schemas.events import (Click, Dismiss, Event, Implement, Impression,
                            InteractionEvent, Rate, Save, Share, View)
from streams import keys
from streams.features.interactions import INTERACTIONS
from streams.labels import LabelConfig, TrainingRow, closes_at, join, label_count_writes
from streams.open_impression import pack_impression, unpack_impression
from streams.store import Guarded, Read
from streams.writes import Write, WriteList, WriteSink, delete, hmax, zrem, zrembelow

_SLACK_S = 1e-3  # float seconds vs datetime microseconds: keep a margin, attributable() is exact
SEP = "\x1f"  # ids cannot contain control characters (schemas.events.Id)
_CLASSES: dict[str, Any] = {"view": View, "click": Click, "save": Save, "share": Share, "rate": Rate,
                            "implement": Implement, "dismiss": Dismiss}


@dataclass(frozen=True, slots=True)
class LabelFlowConfig:
    rules: LabelConfig = LabelConfig()
    lateness_s: float = 600.0
    buffer_s: float = 7200.0
    close_max: int = 2000
    partitions: int = 1  # partitions of the events (and of the impressions) topic
    buffer_max_s: float = 86400.0  # the longest a lagging impressions topic holds interactions back

    def __post_init__(self) -> None:
        if self.buffer_s <= self.rules.max_window.total_seconds() + self.lateness_s:
            raise ValueError("label buffer_s must exceed the longest attribution window + lateness")
        if self.buffer_max_s < self.buffer_s:
            raise ValueError("label buffer_max_s must be at least buffer_s")


def buffer_member(e: InteractionEvent) -> str:
    extra = e.dwell_ms if isinstance(e, View) else e.rating if isinstance(e, Rate) else None
    return orjson.dumps([e.event_id, e.type, e.item_id, extra]).decode()


def parse_member(user_id: str, member: str, ts_s: float) -> InteractionEvent | None:
    try:
        eid, type_, item, extra = orjson.loads(member)
        cls = _CLASSES[type_]
    except (ValueError, KeyError, TypeError):
        return None
    ts = datetime.fromtimestamp(ts_s, timezone.utc)
    fields: dict[str, Any] = dict(event_id=eid, ts=ts, user_id=user_id, item_id=item)
    if type_ == "view":
        fields["dwell_ms"] = int(extra)
    elif type_ == "rate":
        fields["rating"] = int(extra)
    ev: InteractionEvent = cls.model_construct(**fields)
    return ev


def open_member(imp: Impression) -> str:
    return f"{imp.user_id}{SEP}{imp.request_id}"


def event_writes(event: Event, cfg: LabelFlowConfig) -> list[Write]:
    """Writes for one event (interaction -> buffer; impression -> open)."""
    out = WriteList()
    event_emit(event, event.ts.timestamp(), cfg, out)
    return out.writes


def event_emit(event: Event, ts: float, cfg: LabelFlowConfig, out: WriteSink) -> None:
    """``event_writes`` into ``out`` (``ts`` = the event time in epoch s)."""
    if isinstance(event, INTERACTIONS):
        out.zmax(keys.label_buffer(event.user_id), buffer_member(event), ts)
    elif isinstance(event, Impression):
        score = closes_at(event, cfg.rules).timestamp() + cfg.lateness_s
        out.put(keys.label_impression(event.user_id, event.request_id), pack_impression(event))
        out.zmax(keys.LABEL_OPEN, open_member(event), score)


def trim_writes(users: Iterable[str], bound: float) -> list[Write]:
    """Drop the buffered interactions older than ``bound`` (``trim_bound``) of these users."""
    return [zrembelow(keys.label_buffer(u), bound) for u in sorted(set(users))]


def trim_bound(wm: float, imp_wm: float, oldest_open: float | None, cfg: LabelFlowConfig) -> float:
    """The event time below which no impression can still use an interaction, capped.

    An interaction at ``t`` is used only by impressions at or before ``t``.  Those not consumed
    yet are at or after ``imp_wm`` (each impressions partition is in event-time order), those
    consumed and still open at or after ``oldest_open`` (the oldest open impression's time, or
    of the batch's own new impressions).  So everything below the minimum of the two may go, yet
    nothing within ``buffer_s`` of the events watermark ever goes, and everything more than
    ``buffer_max_s`` behind it always does: a lagging (or idle) impressions topic holds the
    buffers back up to that cap."""
    bound = min(wm - cfg.buffer_s, imp_wm, math.inf if oldest_open is None else oldest_open)
    return max(bound, wm - cfg.buffer_max_s)


def oldest_open_ts(open_: Sequence[tuple[str, float]], new_impressions: Iterable[float],
                   cfg: LabelFlowConfig) -> float | None:
    """The event time of the oldest impression still open before this batch or new in it."""
    out = [s - cfg.rules.max_window.total_seconds() - cfg.lateness_s for _, s in open_[:1]]
    out += list(new_impressions)
    return min(out) if out else None


def watermark_reads(cfg: LabelFlowConfig) -> list[Read]:
    """The stored watermarks and the oldest open impression: when it cannot be due yet (the usual
    case) nothing more is read, instead of up to ``close_max`` open impressions every batch."""
    return [Read("hgetall", keys.LABEL_WM), Read("zrange", keys.LABEL_OPEN, (0, 0))]


def open_reads(upper: float, cfg: LabelFlowConfig) -> list[Read]:
    """The oldest open impressions whose close time is below ``upper`` (a bound on the
    batch's watermark): every impression ``due`` can pick."""
    return [Read("zrangebelow", keys.LABEL_OPEN, (upper, cfg.close_max))]


def watermark_writes(max_by_partition: dict[int, float], imp_max: dict[int, float] | None = None) -> list[Write]:
    """``p<n>``: max event time seen in events partition n; ``i<n>``: in impressions partition n."""
    return ([hmax(keys.LABEL_WM, f"p{p}", ts) for p, ts in sorted(max_by_partition.items())]
            + [hmax(keys.LABEL_WM, f"i{p}", ts) for p, ts in sorted((imp_max or {}).items())])


def impression_watermark(stored: dict[str, str] | None, batch: dict[int, float], cfg: LabelFlowConfig) -> float:
    """``watermark`` of the impressions topic; -inf until each of its partitions has been seen."""
    w = watermark(stored, batch, cfg, "i")
    return -math.inf if w is None else w


def watermark(stored: dict[str, str] | None, batch: dict[int, float], cfg: LabelFlowConfig,
              field: str = "p") -> float | None:
    """min over partitions of the max event time seen; None until all have been seen."""
    out: float | None = None
    for p in range(cfg.partitions):
        vals = [float(v) for v in ((stored or {}).get(f"{field}{p}"), batch.get(p)) if v is not None]
        if not vals:
            return None
        m = max(vals)
        out = m if out is None or m < out else out
    return out


def due(open_: Iterable[tuple[str, float]], batch_impressions: Sequence[Impression], watermark: float,
        cfg: LabelFlowConfig) -> list[str]:
    """Open members whose window (+ lateness) the watermark has passed, oldest first."""
    scores = dict(open_)
    for imp in batch_impressions:
        scores[open_member(imp)] = closes_at(imp, cfg.rules).timestamp() + cfg.lateness_s
    ready = sorted((s, m) for m, s in scores.items() if s < watermark)
    return [m for _, m in ready[: cfg.close_max]]


def impression_reads(members: Sequence[str], batch_events: Sequence[Event] = ()) -> list[Read]:
    """First of a close's two reads: the stored impression of each due member not in the batch."""
    in_batch = {open_member(e) for e in batch_events if isinstance(e, Impression)}
    out: list[Read] = []
    for m in members:
        if m not in in_batch:
            user, _, req = m.partition(SEP)
            out.append(Read("get", keys.label_impression(user, req)))
    return out


def due_impressions(members: Sequence[str], reads: Sequence[Read], results: Sequence[Any],
                    batch_events: Sequence[Event]) -> dict[str, Impression | None]:
    """Each due member's impression: from the batch, else as stored (None: lost or corrupt)."""
    got = {r: v for r, v in zip(reads, results)}
    batch_imps = {open_member(e): e for e in batch_events if isinstance(e, Impression)}
    out: dict[str, Impression | None] = {}
    for m in members:
        user, _, req = m.partition(SEP)
        imp = batch_imps.get(m)
        out[m] = imp if imp is not None else unpack_impression(got.get(Read("get", keys.label_impression(user, req))))
    return out


def buffer_read(user_id: str, imp: Impression, cfg: LabelFlowConfig) -> Read:
    """The second read: the user's buffered interactions within the impression's longest window
    (``_SLACK_S`` wider; ``labels.attributable`` decides exactly), not the whole buffer, which holds
    ``buffer_s`` of a user's interactions."""
    lo = imp.ts.timestamp() - _SLACK_S
    return Read("zrangebetween", keys.label_buffer(user_id),
                (lo, lo + cfg.rules.max_window.total_seconds() + 2 * _SLACK_S))


def buffer_reads(imps: dict[str, Impression | None], cfg: LabelFlowConfig) -> list[Read]:
    return list(dict.fromkeys(buffer_read(m.partition(SEP)[0], imp, cfg)
                              for m, imp in imps.items() if imp is not None))


def close(members: Sequence[str], imps: dict[str, Impression | None], reads: Sequence[Read],
          results: Sequence[Any], batch_events: Sequence[Event],
          cfg: LabelFlowConfig) -> tuple[list[Guarded], list[TrainingRow]]:
    """Join each due impression with its user's interactions; one guarded close per impression.
    ``imps``: ``due_impressions``; ``reads``/``results``: ``buffer_reads`` and their answers."""
    got = {r: v for r, v in zip(reads, results)}
    by_user: dict[str, list[InteractionEvent]] = {}
    for e in batch_events:
        if isinstance(e, INTERACTIONS):
            by_user.setdefault(e.user_id, []).append(e)
    guarded: list[Guarded] = []
    rows: list[TrainingRow] = []
    cache: dict[tuple[str, str], InteractionEvent | None] = {}  # (user, buffer member) -> event
    for m in members:
        user, _, req = m.partition(SEP)
        imp = imps.get(m)
        if imp is None:  # state lost or corrupt: drop the index entry
            guarded.append(Guarded(f"close:{user}:{req}", (zrem(keys.LABEL_OPEN, m),)))
            continue
        seen: dict[str, InteractionEvent] = {}
        # each buffered member is parsed once per batch, whichever closes read it
        for member, score in got.get(buffer_read(user, imp, cfg)) or []:
            ck = (user, member)
            if ck in cache:
                ev = cache[ck]
            else:
                ev = cache[ck] = parse_member(user, member, float(score))
            if ev is not None:
                seen.setdefault(ev.event_id, ev)
        for ev in by_user.get(user, []):
            seen.setdefault(ev.event_id, ev)
        imp_rows = join(imp, seen.values(), cfg.rules)
        rows += imp_rows
        writes = label_count_writes(imp_rows) + [
            zrem(keys.LABEL_OPEN, m), delete(keys.label_impression(user, req))]
        guarded.append(Guarded(f"close:{user}:{req}", tuple(writes)))
    return guarded, rows
