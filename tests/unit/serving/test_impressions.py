"""Impression events are written in the codec's canonical form, features as served (no network)."""

from datetime import datetime, timezone

import numpy as np

from schemas.codec import decode, encode
from schemas.events import Impression
from serving.impressions import MISSING_FEATURE, Pending, restore_missing


def test_encoded_bytes_equal_the_codec_and_missing_values_round_trip() -> None:
    rng = np.random.default_rng(0)
    names = tuple(f"f{j}" for j in range(9))
    X = rng.normal(size=(4, 9)) * 10.0 ** rng.integers(-8, 8, size=(4, 9))
    X[0, :5] = [np.nan, np.inf, -0.0, 3.0, float(np.float32(0.1))]
    now = datetime(2024, 3, 2, 12, 0, 0, 123456, tzinfo=timezone.utc)
    p = Pending("u1", "r1", now, ("a", "b", "c", "d"), "v1", names, X)
    raw = p.encoded()
    assert raw == encode(p.event())
    ev = decode(raw, now)
    assert isinstance(ev, Impression) and ev.item_ids == ["a", "b", "c", "d"] and ev.feature_names == list(names)
    assert ev.features is not None and ev.features[0][1] == MISSING_FEATURE
    back = restore_missing(ev.features)
    finite = np.isfinite(X)
    np.testing.assert_array_equal(back[finite], X[finite])
    assert np.isnan(back[0, 0]) and np.isnan(back[0, 1])


def test_records_group_impressions_by_partition_in_order_within_the_limits() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    from schemas.codec import decode_record
    from serving.impressions import records

    now = datetime(2024, 3, 2, 12, 0, 0, tzinfo=timezone.utc)
    names = ("f0", "f1")
    pending = [Pending(f"u{n % 7}", f"r{n}", now, (f"i{n}", "j"), "v1", names, np.full((2, 2), float(n)))
               for n in range(40)]
    partitions = [0, 1, 2, 3]
    one = len(pending[0].encoded())
    got = records(pending, partitions, max_events=4, max_bytes=3 * one + 10)
    part_of = DefaultPartitioner()
    seen: list[str] = []
    for part, key, value, members in got:
        assert 1 <= len(members) <= 3  # the byte limit binds before max_events=4
        assert len(value) <= 3 * one + 10
        assert all(int(part_of(m.user_id.encode(), partitions, partitions)) == part for m in members)
        assert key == members[0].user_id.encode()
        events = decode_record(value, now)
        assert [e.request_id for e in events] == [m.request_id for m in members]  # type: ignore[union-attr]
        assert (value[:1] == b"[") == (len(members) > 1)  # a run of one is a plain record
        first = events[0]
        assert isinstance(first, Impression) and first.features is not None
        np.testing.assert_array_equal(restore_missing(first.features), members[0].features)
        seen += [m.request_id for m in members]
    assert sorted(seen) == sorted(p.request_id for p in pending)  # every impression exactly once
    for part in partitions:  # each partition's impressions keep their order
        mine = [m.request_id for p_, _, _, ms in got if p_ == part for m in ms]
        assert mine == [p.request_id for p in pending
                        if int(part_of(p.user_id.encode(), partitions, partitions)) == part]
    assert len(records(pending[:1], partitions)) == 1
