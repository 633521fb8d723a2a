"""A closing impression reads only its window of the user's label buffer, and labels as the whole buffer would."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

from schemas.events import Click, Impression, InteractionEvent, Save, View
from streams import keys
from streams.label_flow import (LabelFlowConfig, buffer_reads, close, due_impressions, event_writes,
                                impression_reads, open_member)
from streams.labels import TrainingRow, join
from streams.store import Guarded
from streams.store_memory import MemoryStore

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
CFG = LabelFlowConfig()


def _interactions() -> list[InteractionEvent]:
    """Every 2 minutes for the 2 hours of the buffer before the impression, then its 30-minute window
    and 20 minutes after it: items i0..i3 shown, i9 not."""
    out: list[InteractionEvent] = []
    for n, minutes in enumerate(range(-120, 51, 2)):
        ts = T0 + timedelta(minutes=minutes)
        item = f"i{n % 4}" if n % 5 else "i9"
        kind = (View(event_id=f"e{n}", ts=ts, user_id="u", item_id=item, dwell_ms=40_000 + n) if n % 3 == 0
                else Click(event_id=f"e{n}", ts=ts, user_id="u", item_id=item) if n % 3 == 1
                else Save(event_id=f"e{n}", ts=ts, user_id="u", item_id=item))
        out.append(kind)
    # at the impression's own instant and at the end of its window: both attributable
    out.append(Save(event_id="at-open", ts=T0, user_id="u", item_id="i2"))
    out.append(Click(event_id="at-close", ts=T0 + CFG.rules.max_window, user_id="u", item_id="i3"))
    return out


def test_close_reads_the_window_not_the_buffer_and_labels_as_the_whole_buffer() -> None:
    imp = Impression(event_id="imp", ts=T0, user_id="u", request_id="r1", item_ids=["i0", "i1", "i2", "i3"],
                     model_version="v1")
    inter = _interactions()
    store = MemoryStore()
    for e in [imp, *inter]:
        store.apply_writes(event_writes(e, CFG))
    buffer = store.zsets[keys.label_buffer("u")]
    assert len(buffer) == len(inter)

    members = [open_member(imp)]

    async def go() -> tuple[dict[str, Impression | None], list[Any], list[Guarded], list[TrainingRow]]:
        ireads = impression_reads(members)
        imps = due_impressions(members, ireads, await store.read(ireads), [])
        breads = buffer_reads(imps, CFG)
        bres = await store.read(breads)
        guarded, rows = close(members, imps, breads, bres, [], CFG)
        return imps, bres, guarded, rows

    imps, bres, guarded, rows = asyncio.run(go())
    assert imps[open_member(imp)] == imp  # as stored (packed), not from the batch
    window = [e for e in inter if T0 <= e.ts <= T0 + CFG.rules.max_window]
    assert len(bres) == 1 and 0 < len(bres[0]) == len(window) < len(buffer) / 4
    want = {(r.group_id, r.item_id): r.grade for r in join(imp, inter, CFG.rules)}
    got = {(r.group_id, r.item_id): r.grade for r in rows}
    assert got == want and any(g > 0 for g in want.values())
    assert len(guarded) == 1

