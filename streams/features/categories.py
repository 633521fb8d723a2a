"""Write-time context: the categories of the items an event touches.

Interaction and impression events do not carry categories, but the
category-prior and user x category writes need them.  The worker does, per
consumed batch:

    reads = context_reads_for_batch(events)          # one batched read
    results = await store.read(reads)
    ctxs = batch_contexts(events, reads, results)      # one WriteContext per event
    writes = [all_writes(e, cfg, c) for e, c in zip(events, ctxs)]

``batch_contexts`` also applies ItemMeta events of the same batch in order, so
the outcome equals processing the events one by one.  Categories are "as known
when the event is processed": an interaction processed before its item's
ItemMeta contributes to no category.
"""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any, Iterable, Sequence

from schemas.events import Event, Impression, ItemMeta
from streams.features import keys
from streams.features.config import EMPTY_CONTEXT, WriteContext
from streams.features.interactions import INTERACTIONS
from streams.store import Read


def touched_items(event: Event) -> tuple[str, ...]:
    if isinstance(event, Impression):
        return tuple(dict.fromkeys(event.item_ids))
    if isinstance(event, INTERACTIONS):
        return (event.item_id,)
    return ()


def context_reads(event: Event) -> list[Read]:
    return [Read("hgetall", keys.item_cats(i)) for i in touched_items(event)]


def context_reads_for_batch(events: Iterable[Event]) -> list[Read]:
    """``context_reads`` of every event, without repeats (one read per distinct item)."""
    items: dict[str, None] = {}
    for e in events:
        if isinstance(e, INTERACTIONS):
            items[e.item_id] = None
        elif isinstance(e, Impression):
            items.update(dict.fromkeys(e.item_ids))
    return [Read("hgetall", keys.item_cats(i)) for i in items]


def parse_categories(stored: dict[str, str] | None) -> tuple[str, ...]:
    return tuple(json.loads((stored or {}).get("list", "[]")))


def batch_contexts(events: Sequence[Event], reads: Sequence[Read],
                   results: Sequence[Any]) -> list[WriteContext]:
    known: dict[str, tuple[str, ...]] = {}
    for r, res in zip(reads, results):
        if r.op == "hgetall":
            known[r.key] = parse_categories(res)
    out: list[WriteContext] = []
    one: dict[str, WriteContext] = {}  # item -> context of an interaction with it (until its ItemMeta)
    for e in events:
        if isinstance(e, INTERACTIONS):
            ctx = one.get(e.item_id)
            if ctx is None:
                ctx = one[e.item_id] = WriteContext(MappingProxyType(
                    {e.item_id: known.get(keys.item_cats(e.item_id), ())}))
            out.append(ctx)
            continue
        if isinstance(e, ItemMeta):
            known[keys.item_cats(e.item_id)] = tuple(dict.fromkeys(e.categories))
            one.pop(e.item_id, None)
        items = touched_items(e)
        out.append(WriteContext(MappingProxyType(
            {i: known.get(keys.item_cats(i), ()) for i in items})) if items else EMPTY_CONTEXT)
    return out
