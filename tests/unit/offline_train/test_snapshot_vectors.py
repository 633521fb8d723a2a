"""Snapshots (dedupe, event-time window, grades) and the vector adapter's key format."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from offline.dataset import load_training_data
from offline.publish_vectors import activate, active_version, from_bytes, live_namespace, publish, vector_writes
from offline.snapshot import TimeRange, open_snapshot, write_snapshot
from schemas.events import Click, Dismiss, ItemMeta, Rate, View
from streams import keys

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _events() -> list:  # type: ignore[type-arg]
    h = timedelta(hours=1)
    return [
        ItemMeta(event_id="m1", ts=T0, item_id="i1", categories=["drama"], attributes={"year": 1995}),
        Rate(event_id="e1", ts=T0 + h, user_id="u1", item_id="i1", rating=5),
        Rate(event_id="e1", ts=T0 + h, user_id="u1", item_id="i1", rating=5),  # retried duplicate
        Rate(event_id="e2", ts=T0 + 2 * h, user_id="u1", item_id="i2", rating=2),  # below min rating
        Click(event_id="e3", ts=T0 + 3 * h, user_id="u2", item_id="i1"),
        Dismiss(event_id="e4", ts=T0 + 4 * h, user_id="u2", item_id="i2"),
        View(event_id="e5", ts=T0 + 5 * h, user_id="u2", item_id="i3", dwell_ms=60_000),
        Click(event_id="e6", ts=T0 + 50 * h, user_id="u3", item_id="i3"),  # outside the window
    ]


def test_snapshot_dedupes_windows_and_grades(tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path / "s", _events(), [], TimeRange(None, T0 + timedelta(hours=24)), "test")
    assert open_snapshot(tmp_path / "s").n_events == snap.n_events == 6
    data = load_training_data(snap)
    pairs = {(data.user_ids[u], data.item_ids[i]): v for u, i, v in
             zip(data.positives.users, data.positives.items, data.positives.values)}
    # rate 5 -> grade 4; click -> 3; long view -> 2; rate 2 and dismiss are not positives
    assert pairs == {("u1", "i1"): 4.0, ("u2", "i1"): 3.0, ("u2", "i3"): 2.0}
    assert list(data.times) == sorted(data.times)
    assert data.item_features.genres[data.item_ids.index("i1")].sum() == 1


class FakeRedis:
    def __init__(self) -> None:
        self.strings: dict[str, bytes] = {}
        self.hashes: dict[str, dict[str, str]] = {}

    def pipeline(self, transaction: bool = False) -> "FakeRedis":
        return self

    def set(self, k: str, v: bytes) -> None:
        self.strings[k] = v

    def execute(self) -> None:
        pass

    def hset(self, k: str, mapping: dict[str, str]) -> None:
        self.hashes.setdefault(k, {}).update(mapping)

    def hgetall(self, k: str) -> dict[str, str]:
        return self.hashes.get(k, {})

    def get(self, k: str) -> bytes | None:
        return self.strings.get(k)


def test_vectors_use_the_documented_keys_and_float32_le() -> None:
    items, users = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((1, 3), dtype=np.float32)
    pairs = dict(vector_writes("v1", "ns", ["a", "b"], items, ["u"], users))
    assert set(pairs) == {keys.trained_item_vector("v1", "a"), keys.trained_item_vector("v1", "b"),
                          keys.namespaced("ns", keys.user_vector("v1", "u"))}
    assert pairs["streamrec:vec:v1:item:b"] == np.array([3, 4, 5], dtype="<f4").tobytes()
    assert np.array_equal(from_bytes(pairs["streamrec:vec:v1:item:a"]), items[0])
    r = FakeRedis()
    assert publish(r, "v1", "ns", ["a", "b"], items, ["u"], users) == 3
    assert active_version(r) is None  # publishing alone does not switch the fold-in
    activate(r, "v1", 3)
    assert active_version(r) == "v1" and r.hashes[keys.VEC_META]["dim"] == "3"
    assert live_namespace(r, "sr") == "sr"
    r.strings[keys.LIVE_POINTER] = b"ns2"
    assert live_namespace(r, "sr") == "ns2"
