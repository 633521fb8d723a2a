"""`streamrec train` from Kafka: a bounded event-time range into a Parquet snapshot, vectors to Redis
under the registry version, and the stream's fold-in pointed at the promoted version."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import redis

from offline.publish_vectors import active_version, from_bytes
from offline.ranker_data import RankerDataConfig
from offline.retrieval import RetrievalConfig
from offline.snapshot import parse_events
from offline.synthetic import SyntheticConfig, generate
from offline.train_cli import train_run
from offline.train_pipeline import TrainConfig
from streamrec.publisher import publish_events
from streams import keys

END = datetime(2024, 3, 1, tzinfo=timezone.utc)


def test_train_reads_kafka_range_and_publishes_versioned_vectors(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    snap = generate(tmp_path / "gen", SyntheticConfig(events=3000, users=50, items=120, n_clusters=4, days=10), END)
    events = parse_events(pq.read_table(snap.events_path, columns=["raw"]).column("raw").to_pylist())
    late = [e for e in events if e.ts >= END + timedelta(days=1)]
    assert not late
    asyncio.run(publish_events(settings, events, len(events), progress=False))
    cfg = TrainConfig(retrieval=RetrievalConfig(candidates=("als", "bpr")),
                      ranker_data=RankerDataConfig(max_backfill_groups=200), namespace=settings.namespace)
    since = (END - timedelta(days=5)).isoformat()  # bounded range: only the last 5 days of interactions
    result = train_run(settings, "kafka", since, None, progress=False, config=cfg)
    run_snap = result.report_path.parent / "snapshot"
    ts = pq.read_table(run_snap / "events.parquet", columns=["ts", "type"]).to_pydict()
    inter = [t for t, ty in zip(ts["ts"], ts["type"]) if ty not in ("item", "user")]
    assert inter and min(inter) >= (END - timedelta(days=5)).timestamp()
    assert len(inter) < 3000 * 0.6
    r = redis.Redis.from_url(settings.redis_url)
    assert result.promoted and active_version(r) == result.version
    meta = r.hgetall(keys.VEC_META)
    dim = int(meta[b"dim"])
    vec = r.get(keys.trained_item_vector(result.version, "0"))
    assert vec is not None and from_bytes(vec).shape == (dim,)
    assert abs(float(np.linalg.norm(from_bytes(vec))) - 1.0) < 1e-4
    user_key = keys.namespaced(settings.namespace, keys.user_vector(result.version, "0"))
    assert r.get(user_key) is not None
