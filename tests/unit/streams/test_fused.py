"""The fused plan (rules emit into one streams.merge.Merger) against plan-then-merge: the same
writes, in the same order, bit for bit (``repr`` tells 1 from 1.0 and shows every float digit)."""

from __future__ import annotations

import asyncio
import struct
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.common import mixed_events
from schemas.codec import encode, encode_batch
from schemas.events import Click, Dismiss, Event, Impression, ItemMeta, Rate, Save, UserMeta, View
from streams.batch import Decoded, PlanConfig, Record, decode_records, plan_decoded
from streams.batch_context import BatchContext
from streams.merge import Merger, merge_writes
from streams.pipeline import Planner
from streams.store import Group
from streams.store_memory import MemoryStore
from streams.writes import Write, expire, expire_new, hincrby, vlogadd, ztrim
from tests.unit.streams.streamgen import cfg, publish_vectors
from tests.unit.streams.test_merge import WRITE

NOW = datetime(2025, 6, 3, tzinfo=timezone.utc)


def exact(groups: tuple[Group, ...]) -> list[str]:
    return [repr(g) for g in groups]


KEY = st.sampled_from(["h0", "z:h0", "z:h1", "m:h0", "str:h1"])
MORE = st.one_of(
    st.builds(ztrim, st.sampled_from(["z:h0", "z:h1"]), st.integers(0, 4)),
    st.builds(lambda k, m, x: vlogadd(k, m, struct.pack("<2d", x, 1.0)), KEY, KEY, st.floats(-5, 5)),
    st.builds(lambda k, f, x: hincrby(k, f, x), KEY, st.sampled_from(["a", ""]), st.integers(-3, 3)),
    st.builds(lambda k, x: expire(k, x), KEY, st.integers(1, 9)),
    st.builds(lambda k, x: expire_new(k, x), KEY, st.integers(1, 9)),
)


def feed(m: Merger, w: Write, via_method: bool) -> None:
    """Through the op's WriteSink method (the rules' path) or through ``add``."""
    op, key, a, b = w
    if not via_method or op in ("zrem", "zrembelow", "del", "vlogadd", "expirenew"):
        m.add(w)
    elif op in ("ztrim", "expire"):
        getattr(m, op)(key, b)
    elif op == "set":
        m.put(key, b)  # type: ignore[arg-type]
    else:
        getattr(m, op)(key, a, b)


@given(st.lists(st.tuples(st.one_of(WRITE, MORE), st.booleans()), max_size=80))
@settings(max_examples=400, deadline=None, database=None)
def test_merger_fed_write_by_write_equals_merge_writes(writes: list[tuple[Write, bool]]) -> None:
    m = Merger()
    for w, via_method in writes:
        feed(m, w, via_method)
    assert repr(m.result()) == repr(merge_writes([w for w, _ in writes]))


def test_window_count_and_ttl_in_one_call_equals_the_two_writes() -> None:
    one, two = Merger(), Merger()
    for k, (key, field, ttl) in enumerate([("w", "a", 5), ("w", "a", 7), ("v", "a", 1), ("w", "b", 2)]):
        one.hincrby_expire_new(key, field, k, ttl)
        two.hincrby(key, field, k)
        two.add(expire_new(key, ttl))
    assert repr(one.result()) == repr(two.result()) == repr(merge_writes(
        [hincrby("w", "a", 1), expire_new("w", 7), hincrby("v", "a", 2), expire_new("v", 1), hincrby("w", "b", 3),
         expire_new("w", 2)]))


def _context(store: MemoryStore, dec: Decoded, plan_cfg: PlanConfig) -> BatchContext:
    return asyncio.run(Planner(plan_cfg, "").context(store, dec))[0]


def _both(dec: Decoded, plan_cfg: PlanConfig, ctx: BatchContext) -> tuple[list[str], list[str]]:
    ref = plan_decoded(dec, plan_cfg, ctx).merged()
    fused = plan_decoded(dec, plan_cfg, ctx, merge=True)
    assert fused.batch is not None
    return exact(fused.merged()), exact(ref)


def test_fused_plan_equals_plan_then_merge_on_the_bench_events() -> None:
    evs = mixed_events(3000, users=300, items=200)
    store = MemoryStore()
    publish_vectors(store, {f"i{k}": np.array([0.5, -1.0, float(k % 7), 2.0]) for k in range(150)})
    plan_cfg = cfg(1)
    planner = Planner(plan_cfg, "")
    compared = 0
    for off, start in enumerate(range(0, len(evs), 250)):
        dec = decode_records([Record(0, off, encode_batch(evs[start:start + 250]))], NOW, "")
        ctx = _context(store, dec, plan_cfg)
        fused, ref = _both(dec, plan_cfg, ctx)
        assert fused == ref
        compared += len(fused)
        full = asyncio.run(planner.finish(store, dec, ctx, 1))  # apply, so later parts see state
        asyncio.run(store.apply(full.guarded, full.watermark))
    assert compared and store.hashes["stats"]["applied:view"]


KINDS = st.sampled_from(["view", "click", "save", "rate", "dismiss", "impression", "item", "user", "bad"])


def _event(k: int, kind: str, user: int, item: int, dt: float, extra: int) -> Event | bytes:
    ts = datetime(2025, 3, 1, tzinfo=timezone.utc) + timedelta(seconds=dt)
    base: dict[str, Any] = dict(event_id=f"e{k % 37}" if extra % 5 == 0 else f"e{k}", ts=ts, user_id=f"u{user}")
    i = f"i{item}"
    if kind == "view":
        return View(**base, item_id=i, dwell_ms=extra * 997)
    if kind == "click":
        return Click(**base, item_id=i)
    if kind == "save":
        return Save(**base, item_id=i)
    if kind == "rate":
        return Rate(**base, item_id=i, rating=1 + extra % 5)
    if kind == "dismiss":
        return Dismiss(**base, item_id=i)
    if kind == "impression":
        return Impression(**base, request_id=f"r{k}", model_version="m",
                          item_ids=[f"i{(item + j * extra) % 6}" for j in range(1 + extra % 4)])
    if kind == "item":
        return ItemMeta(event_id=f"m{k}", ts=ts, item_id=i, categories=[c for c in "abc"[: extra % 4]],
                        created_at=ts - timedelta(hours=extra) if extra % 2 else None)
    if kind == "user":
        return UserMeta(event_id=f"um{k}", ts=ts, user_id=f"u{user}", attributes={"n": extra})
    return b'{"schema_version":1,"event_id":"x"}'  # a dead letter


Spec = tuple[str, int, int, float, int]
EVENTS = st.lists(st.tuples(KINDS, st.integers(0, 3), st.integers(0, 5), st.floats(0, 9000), st.integers(0, 40)),
                  min_size=1, max_size=60)


@given(EVENTS, EVENTS, st.integers(0, 2))
@settings(max_examples=80, deadline=None, database=None)
def test_fused_plan_equals_plan_then_merge_on_generated_events(first: list[Spec], second: list[Spec],
                                                             parts: int) -> None:
    store = MemoryStore()
    publish_vectors(store, {f"i{k}": np.array([1.0, 0.5, -0.25, float(k)]) for k in range(4)})  # i4, i5: fold-ins
    plan_cfg = cfg(1 + parts)

    def records(spec: list[Spec], off: int) -> list[Record]:
        out = []
        for k, s in enumerate(spec):
            ev = _event(k + off, *s)
            out.append(Record(k % (1 + parts), off + k, ev if isinstance(ev, bytes) else encode(ev)))
        return out

    # the first list is applied, so the second sees categories, vectors, dedupe marks, open impressions
    for spec, off in ((first, 0), (second, 1000)):
        dec = decode_records(records(spec, off), NOW, "")
        ctx = _context(store, dec, plan_cfg)
        fused, ref = _both(dec, plan_cfg, ctx)
        assert fused == ref
        full = asyncio.run(Planner(plan_cfg, "").finish(store, dec, ctx, 1))
        asyncio.run(store.apply(full.guarded, full.watermark))
