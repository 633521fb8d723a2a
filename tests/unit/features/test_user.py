"""User family against a batch reference computed directly from the events."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from schemas.events import Rate
from streams.features import user
from streams.features.config import FeatureConfig
from streams.features.interactions import INTERACTIONS
from tests.unit.features.eventgen import build_store, family_values, last_ts, make_events, unique

CFG = FeatureConfig()
ITEMS = ["i0", "i1", "i2"]


def ref_session(times: list[float], now: float, gap: float) -> tuple[int, float]:
    """Split the whole history into sessions, return the last one if still open."""
    ts = sorted(t for t in times if t <= now)
    if not ts:
        return 0, 0.0
    sessions: list[list[float]] = [[ts[0]]]
    for a, b in zip(ts, ts[1:]):
        if b - a > gap:
            sessions.append([])
        sessions[-1].append(b)
    last = sessions[-1]
    return (len(last), last[-1] - last[0]) if now - last[-1] <= gap else (0, 0.0)


def reference(events, u, now_dt, cfg):  # type: ignore[no-untyped-def]
    now = now_dt.timestamp()
    mine = [e for e in unique(events) if isinstance(e, INTERACTIONS) and e.user_id == u]
    ref: dict[str, float] = {}
    for t in cfg.window_types:
        for w in cfg.windows:
            b = math.floor(now / w.bucket_s)
            ref[f"{t}_count_by_user_{w.name}"] = sum(
                1 for e in mine if e.type == t
                and b - w.n_buckets < math.floor(e.ts.timestamp() / w.bucket_s) <= b)
    times = [e.ts.timestamp() for e in mine]
    past = [t for t in times if t <= now]
    ref["last_interaction_age_s_by_user"] = now - max(past) if past else np.nan
    n, length = ref_session(times, now, cfg.session_gap_s)
    ref["session_event_count_by_user"], ref["session_length_s_by_user"] = n, length
    ratings = [e.rating for e in mine if isinstance(e, Rate)]
    ref["rating_mean_by_user"] = float(np.mean(ratings)) if ratings else np.nan
    ref["dismiss_rate_by_user"] = (sum(e.type == "dismiss" for e in mine) / len(mine)) if mine else np.nan
    return ref


@pytest.mark.parametrize("seed", [11, 12])
def test_user_features_match_batch_reference(seed: int) -> None:
    events = make_events(seed, n=500)
    store = build_store(events, CFG)
    end = last_ts(events)
    sessions_seen = 0
    for now in (end + timedelta(minutes=3), end + timedelta(minutes=45)):
        for u in ("u0", "u1", "u2", "u3", "nobody"):
            got = family_values(store, user.FAMILY, u, ITEMS, now, CFG)
            ref = reference(events, u, now, CFG)
            assert list(got) == list(user.names(CFG))
            for name, col in got.items():
                assert col.shape == (len(ITEMS),)
                np.testing.assert_allclose(col, ref[name], rtol=1e-9, atol=1e-6, equal_nan=True,
                                           err_msg=f"{u} {name}")
            sessions_seen += int(ref["session_event_count_by_user"] > 1)
    assert sessions_seen > 0  # the data really exercises multi-event sessions


def test_session_gap_boundary() -> None:
    gap = 1800.0
    assert user.current_session([0.0, 1800.0, 3600.0], 3600.0, gap) == (3, 3600.0)
    assert user.current_session([0.0, 1800.1, 3600.0], 3600.0, gap) == (2, 1799.9)
    assert user.current_session([0.0], 1800.5, gap) == (0, 0.0)
    assert user.current_session([0.0, 10.0, 5000.0], 20.0, gap) == (2, 10.0)  # future ignored


def test_recent_is_trimmed() -> None:
    cfg = FeatureConfig(recent_keep=16)
    events = make_events(13, n=300, n_users=1)
    store = build_store(events, cfg)
    assert len(store.zsets["user:{u0}:recent"]) == 16
    kept = sorted(store.zsets["user:{u0}:recent"].values())
    times = sorted(e.ts.timestamp() for e in unique(events) if isinstance(e, INTERACTIONS))
    assert kept == times[-16:]
