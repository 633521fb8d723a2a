"""What a batch's plan needs from the store, and the one round trip that reads it (pure).

``context_reads`` lists the reads (item categories, every event's dedupe mark, the label
watermarks and the oldest open impression, the item-factor meta, touched items' trained vectors
and touched users' vector accumulators); ``build_context`` turns their answers into a
``BatchContext`` for ``streams.batch.plan_decoded``.  ``open_bound`` says whether open
impressions may be due (then ``label_flow.open_reads`` fetches them) and ``meta_of`` finds the
item-factor meta among the answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from schemas.codec import Rejection
from streams import keys
from streams.embeddings import VectorMeta, decode_f32
from streams.features.categories import context_reads_for_batch
from streams.features.family import RawResults, unique_reads
from streams.label_flow import watermark, watermark_reads
from streams.store import Read
from streams.vector_plan import meta_read, parse_meta, vector_reads

if TYPE_CHECKING:
    from streams.batch import Decoded, PlanConfig


@dataclass(frozen=True)
class BatchContext:
    """What the plan needs from the store, read in one round trip at batch start."""

    category_reads: tuple[Read, ...] = ()
    category_results: tuple[Any, ...] = ()
    applied: frozenset[str] = frozenset()  # event ids whose dedupe mark exists
    meta: VectorMeta | None = None
    item_vectors: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    user_accs: Mapping[str, bytes | None] = field(default_factory=lambda: MappingProxyType({}))
    label_wm: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    open_impressions: tuple[tuple[str, float], ...] = ()



def context_reads(dec: Decoded, cfg: PlanConfig, meta: VectorMeta | None) -> list[Read]:
    events = dec.events
    out = context_reads_for_batch(events)
    out += [Read("get", keys.dedupe(eid)) for eid in dict.fromkeys(e.event_id for e in events)]
    out += watermark_reads(cfg.labels) + [meta_read()]
    if cfg.vectors.enabled:
        out += vector_reads(events, meta)
    return unique_reads(out)


def build_context(dec: Decoded, reads: Sequence[Read], results: Sequence[Any],
                  meta: VectorMeta | None) -> BatchContext:
    got = RawResults(reads, results).by_key  # (op, key, args) -> result, later duplicates win
    events = dec.events
    cat_reads = tuple(context_reads_for_batch(events))
    applied = frozenset(e.event_id for e in events if got.get(("get", keys.dedupe(e.event_id), ())) is not None)
    wm_raw = got.get(("hgetall", keys.LABEL_WM, ())) or {}
    # the open impressions below the watermark's bound (open_reads), else the oldest one only
    open_ = (next((v for (op, key, _), v in got.items() if op == "zrangebelow" and key == keys.LABEL_OPEN), None)
             or next((v for (op, key, _), v in got.items() if op == "zrange" and key == keys.LABEL_OPEN), None)
             or [])
    item_vecs: dict[str, Any] = {}
    user_accs: dict[str, bytes | None] = {}
    if meta is not None:
        prefix_i = keys.trained_item_vector(meta.version, "")
        for (op, key, _), v in got.items():
            if op == "get" and key.startswith(prefix_i):
                item_vecs[key[len(prefix_i):]] = decode_f32(v, meta.dim)
        for e in events:
            rk = ("get", keys.user_vector_acc(meta.version, getattr(e, "user_id", "")), ())
            if rk in got:
                user_accs[e.user_id] = got[rk]  # type: ignore[union-attr]
    return BatchContext(cat_reads, tuple(got.get((r.op, r.key, r.args)) for r in cat_reads), applied, meta,
                        MappingProxyType(item_vecs), MappingProxyType(user_accs),
                        MappingProxyType(dict(wm_raw)),
                        tuple((m, float(s)) for m, s in open_))


def open_bound(dec: Decoded, reads: Sequence[Read], results: Sequence[Any], cfg: PlanConfig) -> float | None:
    """An upper bound of the labels' watermark after this batch when the oldest open impression
    (``watermark_reads``) is below it, i.e. when impressions may be due and ``open_reads`` must
    fetch them; None otherwise.  The bound takes every valid event (the plan later takes only the
    new ones), and the watermark can only be lower."""
    stored: Any = None
    oldest: Any = None
    for r, v in zip(reads, results):
        if r.op == "hgetall" and r.key == keys.LABEL_WM:
            stored = v
        elif r.op == "zrange" and r.key == keys.LABEL_OPEN:
            oldest = v
    if not oldest:
        return None
    max_ts: dict[int, float] = {}
    for rec, x in dec.items:
        if not isinstance(x, Rejection) and rec.topic in ("", dec.topic):
            ts = x.ts.timestamp()
            if ts > max_ts.get(rec.partition, -math.inf):
                max_ts[rec.partition] = ts
    upper = watermark(dict(stored or {}), max_ts, cfg.labels)
    return upper if upper is not None and float(oldest[0][1]) < upper else None


def meta_of(reads: Sequence[Read], results: Sequence[Any]) -> VectorMeta | None:
    for r, v in zip(reads, results):
        if r == meta_read():
            return parse_meta(v)
    return None
