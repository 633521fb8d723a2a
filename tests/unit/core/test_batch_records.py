"""Batch records: many events in one Kafka record, decoded one by one, routed like single records."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
from aiokafka.partitioner import DefaultPartitioner

from schemas.codec import MAX_BATCH_EVENTS, Rejection, decode_record, encode, encode_batch
from schemas.events import Click, Event, View
from streams.batch import Record, decode_records
from streamrec.batch_records import event_key, group

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def clicks(n: int, users: int = 5) -> list[Event]:
    return [Click(event_id=f"e{k}", ts=NOW - timedelta(seconds=n - k), user_id=f"u{k % users}", item_id=f"i{k % 3}")
            for k in range(n)]


def test_a_batch_record_decodes_to_its_events_in_order_and_bad_ones_alone() -> None:
    evs = clicks(4)
    bad = {"type": "view", "event_id": "bad", "ts": NOW.isoformat(), "user_id": "u", "item_id": "i", "dwell_ms": -5}
    raw = b"[" + b",".join([encode(evs[0]), orjson.dumps(bad), encode(evs[1])]) + b"]"
    out = decode_record(raw, NOW)
    assert [None if isinstance(x, Rejection) else x.event_id for x in out] == ["e0", None, "e1"]
    rej = out[1]
    assert isinstance(rej, Rejection) and "dwell_ms" in rej.reason and rej.event_id == "bad"
    assert orjson.loads(rej.raw) == bad  # the element's own bytes, for the dead-letter topic
    assert decode_record(encode_batch(evs), NOW) == evs
    assert decode_record(encode(evs[2]), NOW) == [evs[2]]


def test_arrays_that_are_not_batches_of_objects_are_one_rejection() -> None:
    for raw in (b"[]", b"[1, 2]", b'[{"type": "click"}, 3]', b"[" * 5000 + b"]" * 5000, b"[{]",
                orjson.dumps([{"a": 1}] * (MAX_BATCH_EVENTS + 1))):
        out = decode_record(raw, NOW)
        assert len(out) == 1 and isinstance(out[0], Rejection), raw[:40]


def test_worker_records_get_an_index_and_dead_letters_their_own_coordinates() -> None:
    evs = clicks(3)
    raw = b"[" + b",".join([encode(evs[0]), b'{"type": "nope"}', encode(evs[1])]) + b"]"
    dec = decode_records([Record(2, 7, raw), Record(2, 8, encode(evs[2]))], NOW)
    recs = [r for r, _ in dec.items]
    assert [r.index for r in recs] == [0, 1, 2, -1]
    assert recs[1].source == "/2/7#1" and recs[3].source == "/2/8"
    assert dec.watermark == {2: 9}


def test_grouping_routes_each_event_as_a_single_record_would_and_keeps_order() -> None:
    evs = clicks(40, users=7) + [View(event_id="v", ts=NOW, user_id="u3", item_id="i", dwell_ms=10)]
    parts = [0, 1, 2, 3]
    out = group(evs, parts, size=4)
    assert all(n <= 4 for _, _, _, n in out)
    seen: list[Event] = []
    for p, key, value, n in out:
        got = decode_record(value, NOW)
        assert len(got) == n
        for e in got:
            assert DefaultPartitioner()(event_key(e), parts, parts) == p
        seen += got  # type: ignore[arg-type]
    assert sorted(e.event_id for e in seen) == sorted(e.event_id for e in evs)
    for u in {e.user_id for e in evs}:  # type: ignore[attr-defined]
        assert [e.event_id for e in seen if e.user_id == u] == [e.event_id for e in evs if e.user_id == u]  # type: ignore[attr-defined]


def test_an_event_too_deep_for_the_record_is_rejected_alone() -> None:
    # orjson reads 1,024 levels: this object parses alone, but inside the record's array it is one
    # level too deep, which made the whole record (both good events) one rejection
    evs = clicks(2)
    deep = b'{"a":' * 1024 + b"1" + b"}" * 1024
    too_deep = b'{"a":' * 3000 + b"1" + b"}" * 3000
    for bad in (deep, too_deep):
        raw = b"[" + b",".join([encode(evs[0]), bad, encode(evs[1])]) + b"]"
        out = decode_record(raw, NOW)
        assert [None if isinstance(x, Rejection) else x.event_id for x in out] == ["e0", None, "e1"]
        rej = out[1]
        assert isinstance(rej, Rejection) and rej.raw == bad and rej.reason
    assert isinstance(decode_record(deep, NOW)[0], Rejection)  # alone: parsed, then refused as an event


def test_a_record_broken_elsewhere_stays_one_rejection_even_with_a_deep_event() -> None:
    deep = b'{"a":' * 1024 + b"1" + b"}" * 1024
    ok = encode(clicks(1)[0])
    for raw in (b"[" + ok + b"," + deep + b", nope]", b"[" + ok + b"," + deep + b",]",
                b"[" + b"[" * 1100 + b"]" * 1100 + b"," + ok + b"]"):
        out = decode_record(raw, NOW)
        assert len(out) == 1 and isinstance(out[0], Rejection) and out[0].raw == raw
