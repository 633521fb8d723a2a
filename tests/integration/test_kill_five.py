"""Fault injection: SIGKILL the worker at 5 random points of a 50,000-event stream, restarting
it each time; the final state digest equals an uninterrupted run's.

Everything is on: 70 features, labels (impressions joined and closed), incremental vectors.
The uninterrupted run is the worker's own per-batch code applied once to every retained record
(``reference_store``), the same reference the 3-kill test uses.  The kill points are
drawn from a seeded generator and printed, so a failure can be replayed.
"""

from __future__ import annotations

import random
import threading

import pytest
import redis

from schemas.events import ItemMeta
from streams import keys
from streams.batch import Record
from streamrec.runtime import Child
from streamrec.settings import Settings
from tests.integration.conftest import run, wait_until
from tests.integration.test_streams_recovery import (LABEL_ENV, applied_total, assert_converges_to_reference,
                                                     produce, publish_stream_vectors, remove_stream_vectors)
from tests.unit.streams.streamgen import make_stream

pytestmark = [pytest.mark.integration, pytest.mark.slow]
N = 50_000
KILLS = 5
SEED = 20261122


def kill_points(first: int, total: int, n: int, rng: random.Random) -> list[int]:
    """n distinct applied-event counts, spread over the stream, at least 2,000 apart."""
    while True:
        marks = sorted(rng.sample(range(first + 1000, total - 3000), n))
        if all(b - a >= 2000 for a, b in zip(marks, marks[1:])):
            return marks


def test_sigkill_at_five_random_points_of_50k_events(
    env: dict[str, str], settings: Settings, worker: Child, rclient: redis.Redis, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    for k, v in LABEL_ENV.items():
        monkeypatch.setenv(k, v)
    env.update(LABEL_ENV)
    s = Settings()
    stream = make_stream(29, n=N, partitions=4, users=800, items=1000)
    publish_stream_vectors(rclient, stream)
    try:
        metas = [e for e in stream.events if isinstance(e, ItemMeta)]
        body = stream.events[len(metas):]
        records: list[Record] = []
        ns = s.namespace
        run(produce(s, metas, 10_000, records))
        worker.start()
        wait_until(lambda: applied_total(rclient, ns) >= len(metas), 120, "metadata applied", worker)
        marks = kill_points(len(metas), len(stream.events), KILLS, random.Random(SEED))
        print(f"kill points (applied events): {marks}")
        pub = threading.Thread(target=lambda: run(produce(s, body, 3000, records)), daemon=True)
        pub.start()
        killed_at: list[int] = []
        for mark in marks:
            wait_until(lambda: applied_total(rclient, ns) >= mark, 300, f"{mark} applied", worker)
            worker.kill()
            killed_at.append(applied_total(rclient, ns))
            worker.start()
        pub.join(300)
        assert not pub.is_alive(), "the producer did not finish"
        assert len(killed_at) == KILLS and all(k < len(stream.events) for k in killed_at), killed_at
        assert_converges_to_reference(rclient, s, worker, records, stream, 600)
        # ... and embeddings
        assert any(rclient.scan_iter(match=keys.namespaced(ns, "vec:itest:user:*"), count=10_000))
    finally:
        remove_stream_vectors(rclient)
