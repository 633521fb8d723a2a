"""Deterministic synthetic event streams for integration tests."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from schemas.events import Click, Event, Rate, Save, View

T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)


def interactions(n: int, users: int = 100, items: int = 200, seed: int = 0, prefix: str = "e") -> list[Event]:
    rng = random.Random(seed)
    out: list[Event] = []
    for i in range(n):
        u, it = f"u{rng.randrange(users)}", f"i{rng.randrange(items)}"
        ts = T0 + timedelta(seconds=i * 3)
        kind = rng.random()
        eid = f"{prefix}-{i}"
        if kind < 0.4:
            out.append(View(event_id=eid, ts=ts, user_id=u, item_id=it, dwell_ms=rng.randrange(0, 120_000)))
        elif kind < 0.7:
            out.append(Click(event_id=eid, ts=ts, user_id=u, item_id=it))
        elif kind < 0.8:
            out.append(Save(event_id=eid, ts=ts, user_id=u, item_id=it))
        else:
            out.append(Rate(event_id=eid, ts=ts, user_id=u, item_id=it, rating=rng.randint(1, 5)))
    return out
