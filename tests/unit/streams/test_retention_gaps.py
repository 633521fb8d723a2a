"""Records deleted by retention before they were applied: candidate gaps, confirmation, the count."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import pytest
from hypothesis import given, settings, strategies as st

from streams import keys
from streams.retention_gaps import Gap, GapTracker, lost_to_retention, parse_watermark
from streams.retention_watch import RetentionWatch, worker_topics
from streams.store import Guarded, Read
from streams.store_memory import MemoryStore
from streams.writes import hmax, hset


@dataclass(frozen=True)
class Rec:
    partition: int
    offset: int
    topic: str = ""


def test_a_jump_is_a_gap_and_repeats_are_not() -> None:
    t = GapTracker()
    assert t.observe([Rec(0, 5), Rec(0, 6), Rec(1, 0)]) == []
    assert t.observe([Rec(0, 6), Rec(0, 7)]) == []  # a re-delivery, then on
    assert t.observe([Rec(0, 10), Rec(1, 3), Rec(0, 11)]) == [Gap(0, 8, 10), Gap(1, 1, 3)]
    assert t.next == {0: 12, 1: 4}


def test_other_topics_are_skipped() -> None:
    t = GapTracker()
    assert t.observe([Rec(0, 0), Rec(0, 50, "impressions"), Rec(0, 1)]) == []
    assert t.next == {0: 2}


def test_a_seed_makes_the_first_record_after_a_restart_count() -> None:
    t = GapTracker()
    t.seed({0: 100, 1: 7})
    assert t.seeded
    assert t.observe([Rec(0, 90), Rec(0, 100), Rec(1, 20)]) == [Gap(1, 7, 20)]


def test_confirmation_and_the_count_below_the_log_start() -> None:
    g = Gap(0, 10, 50)
    assert g.confirmed(None) == g
    assert g.confirmed(30) == Gap(0, 30, 50)  # another worker applied 10..29
    assert g.confirmed(50) is None and g.confirmed(60) is None
    assert lost_to_retention(g, 0) == 0  # nothing deleted: commit markers or compaction
    assert lost_to_retention(g, 10) == 0
    assert lost_to_retention(g, 25) == 15
    assert lost_to_retention(g, 50) == 40
    assert lost_to_retention(g, 80) == 40  # never more than the gap


def test_parse_watermark_skips_bad_fields() -> None:
    assert parse_watermark({"0": "12", "1": "x", "p": "3", "2": "7"}) == {0: 12, 2: 7}
    assert parse_watermark(None) == {}


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Rec], dict[int, set[int]]]:
    """Per partition: offsets going forward with random jumps, and rewinds that re-deliver what was
    consumed (as a restarted consumer does), interleaved across partitions."""
    out: list[Rec] = []
    consumed: dict[int, set[int]] = {}
    pos = {p: draw(st.integers(0, 5)) for p in range(draw(st.integers(1, 3)))}
    for _ in range(draw(st.integers(1, 80))):
        p = draw(st.sampled_from(sorted(pos)))
        mine = consumed.setdefault(p, set())
        step = draw(st.sampled_from(["next", "next", "next", "jump", "rewind"]))
        if step == "jump":
            pos[p] += draw(st.integers(1, 20))
        elif step == "rewind" and mine:
            seen = sorted(mine)
            start = draw(st.sampled_from(seen))
            for off in seen[seen.index(start):]:
                out.append(Rec(p, off))
            continue
        out.append(Rec(p, pos[p]))
        mine.add(pos[p])
        pos[p] += 1
    return out, consumed


@settings(max_examples=300, deadline=None)
@given(deliveries(), st.integers(1, 9))
def test_the_gaps_are_exactly_the_offsets_never_consumed(case: tuple[list[Rec], dict[int, set[int]]], cut: int) -> None:
    """Batch reference: per partition, every offset between the first and the last consumed that
    never was; observed in consumed batches of any size."""
    recs, consumed = case
    t = GapTracker()
    gaps: list[Gap] = []
    for k in range(0, len(recs), cut):
        gaps += t.observe(recs[k:k + cut])
    for p, offs in consumed.items():
        want = set(range(min(offs), max(offs) + 1)) - offs
        got = {o for g in gaps if g.partition == p for o in range(g.expected, g.got)}
        assert got == want
        assert t.next[p] == max(offs) + 1


TOPICS = worker_topics("events", "impressions")


def _watch(store: MemoryStore, starts: dict[int, int], imp_starts: dict[int, int] | None = None) -> RetentionWatch:
    async def log_start(topic: str, p: int) -> int:
        return starts[p] if topic == "events" else (imp_starts or {})[p]

    return RetentionWatch(store, log_start, TOPICS)


def test_the_watch_counts_only_what_the_broker_deleted(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> tuple[int, int, int, object]:
        store = MemoryStore()
        await store.apply([], {0: 100, 1: 40})  # what was applied before the worker stopped
        w = _watch(store, {0: 130, 1: 0})
        first = await w.check([Rec(0, 130), Rec(1, 45), Rec(0, 131)])  # 100..129 deleted; 40..44: markers
        second = await w.check([Rec(0, 132), Rec(0, 140)])  # 133..139 still held: not deleted
        # another worker applied 141..199 of partition 0 during a rebalance
        await store.apply([], {0: 200})
        third = await w.check([Rec(0, 200)])
        (stats,) = await store.read([Read("hgetall", keys.STATS)])
        return first, second, third, stats

    with caplog.at_level(logging.ERROR, logger="streamrec.worker"):
        first, second, third, stats = asyncio.run(go())
    assert (first, second, third) == (30, 0, 0)
    assert stats == {"lost_to_retention": "30"}
    assert any("30 records (offsets 100..129)" in r.getMessage() for r in caplog.records)


def test_the_watch_sees_no_loss_on_a_fresh_namespace() -> None:
    async def go() -> int:
        store = MemoryStore()
        await store.apply([Guarded(None, (hset("other", "f", "1"),))])
        return await _watch(store, {0: 500}).check([Rec(0, 500), Rec(0, 501)])

    assert asyncio.run(go()) == 0


def test_a_failed_read_leaves_the_gap_to_the_next_check() -> None:
    """The broker cannot be asked once: the gap is neither lost nor counted twice."""
    calls = []

    async def flaky(topic: str, p: int) -> int:
        calls.append(p)
        if len(calls) == 1:
            raise ConnectionError("broker unreachable")
        return 60

    async def go() -> tuple[int, object]:
        store = MemoryStore()
        await store.apply([], {0: 10})
        w = RetentionWatch(store, flaky, TOPICS)
        with pytest.raises(ConnectionError):
            await w.check([Rec(0, 60)])  # 10..59 deleted, but the log start could not be read
        later = await w.check([Rec(0, 61)])
        again = await w.check([Rec(0, 62)])
        (stats,) = await store.read([Read("hgetall", keys.STATS)])
        return later + again, stats

    counted, stats = asyncio.run(go())
    assert counted == 50 and stats == {"lost_to_retention": "50"}


def test_the_impressions_topic_is_watched_against_its_own_watermark(caplog: pytest.LogCaptureFixture) -> None:
    """Same partition numbers, two topics: each gap is judged against its topic's watermark and
    log start, and counted in its own field."""
    async def go() -> tuple[int, int, object, dict[str, int]]:
        store = MemoryStore()
        await store.apply([Guarded(None, (hmax(keys.IMPRESSIONS_WATERMARK, "0", 8),))], {0: 100})
        w = _watch(store, {0: 100}, {0: 20})
        first = await w.check([Rec(0, 100), Rec(0, 25, "impressions")])  # impressions 8..19 deleted
        # the events partition resumes where it was: nothing there; an impressions gap above the log start
        second = await w.check([Rec(0, 101), Rec(0, 30, "impressions")])
        (stats,) = await store.read([Read("hgetall", keys.STATS)])
        return first, second, stats, w.lost

    with caplog.at_level(logging.ERROR, logger="streamrec.worker"):
        first, second, stats, lost = asyncio.run(go())
    assert (first, second) == (12, 0)
    assert stats == {"impressions_lost_to_retention": "12"}
    assert lost == {"lost_to_retention": 0, "impressions_lost_to_retention": 12}
    assert any(r.getMessage().startswith("impressions partition 0: 12 records (offsets 8..19)") for r in caplog.records)


def test_a_deleted_tail_is_counted_by_two_idle_sweeps_and_only_once() -> None:
    """A producer that stopped: no later record shows the gap, the sweeps find it."""
    async def go() -> tuple[list[int], int, object]:
        store = MemoryStore()
        await store.apply([], {0: 20})  # applied 0..19, then stopped; 20..49 deleted since
        w = _watch(store, {0: 50})
        got = [await w.sweep([("", 0, 50)], idle=True)]  # first sight: a candidate only
        got.append(await w.sweep([("", 0, 50)], idle=True))  # stood through an idle interval: counted
        got.append(await w.sweep([("", 0, 50)], idle=True))
        later = await w.check([Rec(0, 50), Rec(0, 51)])  # traffic again: no second count
        (stats,) = await store.read([Read("hgetall", keys.STATS)])
        return got, later, stats

    got, later, stats = asyncio.run(go())
    assert got == [0, 30, 0] and later == 0
    assert stats == {"lost_to_retention": "30"}


def test_a_sweep_never_counts_what_may_still_be_on_its_way() -> None:
    async def go() -> list[int]:
        store = MemoryStore()
        await store.apply([], {0: 20})
        w = _watch(store, {0: 50})
        out = [await w.sweep([("", 0, 30)], idle=True), await w.sweep([("", 0, 30)], idle=True)]
        # the consumer returned 20..29 already (position 30): they are in the worker, not lost;
        # and records up to 49 may still come from the client's fetch buffer
        out.append(await w.sweep([("", 0, 50)], idle=False))  # a batch was taken since: wait
        out.append(await w.sweep([("", 0, 50)], idle=False))
        out.append(await w.sweep([("", 0, 50)], idle=True))
        out.append(await w.sweep([("impressions", 3, 10)], idle=True))  # nothing known of it: skipped
        return out

    assert asyncio.run(go()) == [0, 0, 0, 0, 30, 0]


def test_a_counted_loss_raises_the_watermark_so_a_restart_does_not_count_it_again() -> None:
    async def go() -> tuple[int, int, object, object]:
        store = MemoryStore()
        await store.apply([], {0: 20})
        first = await _watch(store, {0: 50}).check([Rec(0, 50)])  # 20..49 counted, then the worker dies
        (wm,) = await store.read([Read("hgetall", keys.WATERMARK)])
        # restarted: it consumes from the log start again, seeded from the stored watermark
        again = await _watch(store, {0: 50}).check([Rec(0, 50), Rec(0, 51)])
        (stats,) = await store.read([Read("hgetall", keys.STATS)])
        return first, again, wm, stats

    first, again, wm, stats = asyncio.run(go())
    assert (first, again) == (30, 0)
    assert wm == {"0": "50"}
    assert stats == {"lost_to_retention": "30"}
