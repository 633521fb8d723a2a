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
