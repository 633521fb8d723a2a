"""Cutting a consumed batch into bounded applies: parts, watermarks, and the same state either way."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from schemas.codec import encode, encode_batch
from schemas.events import Click, Event, Impression, ItemMeta, View
from streams import keys
from streams.batch import Record, decode_records, split_events
from streams.processor import BatchProcessor
from streams.store import Read
from streams.store_memory import MemoryStore

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def events(n: int) -> list[Event]:
    out: list[Event] = [ItemMeta(event_id="m0", ts=NOW - timedelta(hours=1), item_id="i0", categories=["c0"])]
    for k in range(n - 1):
        ts = NOW - timedelta(seconds=n - k)
        if k % 3:
            out.append(Click(event_id=f"e{k}", ts=ts, user_id=f"u{k % 4}", item_id=f"i{k % 3}"))
        else:
            out.append(View(event_id=f"e{k}", ts=ts, user_id=f"u{k % 4}", item_id=f"i{k % 3}", dwell_ms=100 + k))
    return out


def test_parts_cut_records_and_a_record_counts_in_the_watermark_only_with_its_last_event() -> None:
    recs = [Record(0, 0, encode_batch(events(7))), Record(0, 1, encode(events(1)[0])),
            Record(1, 5, encode_batch(events(3)))]
    dec = decode_records(recs, NOW)
    parts = split_events(dec, 3)
    assert [len(p.items) for p in parts] == [3, 3, 3, 2]
    # record 0/0 (items 0-6) and 0/1 (item 7) end in part 3, 1/5 (items 8-10) in part 4
    assert [p.watermark for p in parts] == [{}, {}, {0: 2}, {1: 6}]
    assert [x for p in parts for x in p.items] == list(dec.items)
    assert split_events(dec, 100)[0].watermark == dec.watermark


def test_the_state_does_not_depend_on_the_events_per_apply() -> None:
    evs = events(60)
    recs = [Record(k % 2, k // 2, encode_batch(evs[s:s + 20])) for k, s in enumerate(range(0, 60, 20))]

    def digest(max_events: int) -> tuple[str, int]:
        store = MemoryStore("t")
        applies = 0
        orig = store.apply

        async def counting(batch, watermark=None):  # type: ignore[no-untyped-def]
            nonlocal applies
            applies += 1
            return await orig(batch, watermark)

        store.apply = counting  # type: ignore[method-assign]
        proc = BatchProcessor(store, lambda v, k: asyncio.sleep(0), lambda: NOW, "", max_events=max_events)
        asyncio.run(proc.process(recs))
        assert proc.counters.applied == 60
        return asyncio.run(store.digest()), applies

    whole, n_whole = digest(1000)
    cut, n_cut = digest(7)
    assert (n_whole, n_cut) == (1, 9)
    assert cut == whole


def impression(k: int) -> Impression:
    return Impression(event_id=f"imp{k}", ts=NOW - timedelta(seconds=30 - k), user_id=f"u{k % 4}",
                      request_id=f"r{k}", item_ids=["i0", "i1"], model_version="m1")


def test_impressions_records_have_their_own_watermark_with_the_same_last_event_rule() -> None:
    recs = [Record(0, 0, encode_batch(events(4))), Record(0, 7, encode_batch([impression(0), impression(1)]), "imps"),
            Record(1, 3, encode(impression(2)), "imps")]
    dec = decode_records(recs, NOW, "events")
    assert (dec.watermark, dec.imp_watermark) == ({0: 1}, {0: 8, 1: 4})
    parts = split_events(dec, 5)  # the impressions record 0/7 is cut after its first item
    assert [(p.watermark, p.imp_watermark) for p in parts] == [({0: 1}, {}), ({}, {0: 8, 1: 4})]


def test_every_impressions_record_raises_its_watermark_once_applied() -> None:
    """Applied, dead-lettered or re-delivered: the offsets watermark of the impressions topic follows
    each record consumed, in the same apply, and the applied count is not changed by it."""
    good = [Record(2, 10, encode(impression(0)), "imps"), Record(2, 11, b"not json", "imps"),
            Record(0, 0, encode(events(1)[0]))]

    async def go() -> tuple[dict[str, str], dict[str, str], int, int]:
        store = MemoryStore("t")
        proc = BatchProcessor(store, lambda v, k: asyncio.sleep(0), lambda: NOW, "")
        await proc.process(good)
        await proc.process([Record(2, 12, encode(impression(0)), "imps")])  # the same impression again
        (imp, wm) = await store.read([Read("hgetall", keys.IMPRESSIONS_WATERMARK), Read("hgetall", keys.WATERMARK)])
        return imp, wm, proc.counters.applied, proc.counters.duplicates

    imp, wm, applied, dups = asyncio.run(go())
    assert imp == {"2": "13"}
    assert wm == {"0": "1"}
    assert (applied, dups) == (2, 1)
