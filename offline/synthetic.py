"""`streamrec generate`: a synthetic event log with known structure, written as a Parquet snapshot.

Users and items belong to ``n_clusters`` taste clusters (item categories name the
cluster); 80% of a user's interactions go to items of the user's cluster, the
rest anywhere; item popularity is Zipf-like within each pool.  Interaction types
are drawn from a fixed mix (view with dwell, click, rate, save, share, implement,
dismiss); times are spread uniformly over ``days`` days ending at ``end``.
Events are built as JSON directly (same schema as ``schemas.events``; a sample is
validated) so a million of them take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from offline.snapshot import EVENT_SCHEMA, EVENTS_FILE, EXAMPLE_SCHEMA, EXAMPLES_FILE, META_FILE, Snapshot, parse_events

TYPES = ("view", "click", "rate", "save", "share", "implement", "dismiss")
MIX = (0.45, 0.25, 0.12, 0.07, 0.04, 0.03, 0.04)


@dataclass(frozen=True)
class SyntheticConfig:
    events: int = 1_000_000
    users: int = 5_000
    items: int = 20_000
    n_clusters: int = 20
    days: int = 30
    in_cluster: float = 0.8
    seed: int = 0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def generate(out: Path, cfg: SyntheticConfig, end: datetime, chunk: int = 200_000) -> Snapshot:
    rng = np.random.default_rng(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    start_ts = (end - timedelta(days=cfg.days)).timestamp()
    user_c = rng.integers(0, cfg.n_clusters, cfg.users)
    item_c = rng.integers(0, cfg.n_clusters, cfg.items)
    item_w = 1.0 / np.arange(1, cfg.items + 1) ** 0.8
    item_w = item_w[rng.permutation(cfg.items)]
    pools = [np.flatnonzero(item_c == c) for c in range(cfg.n_clusters)]
    pool_p = [item_w[p] / item_w[p].sum() for p in pools]
    rows: list[dict[str, object]] = []
    meta_ts = start_ts - 1
    for i in range(cfg.items):
        obj = {"type": "item", "event_id": f"syn-i-{i}", "ts": _iso(meta_ts), "item_id": str(i),
               "categories": [f"c{item_c[i]}"], "attributes": {"year": int(1980 + i % 40)}}
        rows.append({"event_id": obj["event_id"], "type": "item", "ts": meta_ts, "user_id": None, "item_id": str(i),
                     "value": float("nan"), "raw": orjson.dumps(obj)})
    genders, occupations = ("M", "F"), tuple(f"occ{k}" for k in range(10))
    for u in range(cfg.users):
        obj = {"type": "user", "event_id": f"syn-u-{u}", "ts": _iso(meta_ts), "user_id": str(u),
               "attributes": {"age": int(18 + u % 50), "gender": genders[u % 2], "occupation": occupations[u % 10]}}
        rows.append({"event_id": obj["event_id"], "type": "user", "ts": meta_ts, "user_id": str(u), "item_id": None,
                     "value": float("nan"), "raw": orjson.dumps(obj)})
    users = rng.integers(0, cfg.users, cfg.events)
    ts = np.sort(rng.uniform(start_ts, end.timestamp() - 1, cfg.events))
    in_c = rng.random(cfg.events) < cfg.in_cluster
    items = rng.choice(cfg.items, cfg.events, p=item_w / item_w.sum())
    for c in range(cfg.n_clusters):
        sel = np.flatnonzero(in_c & (user_c[users] == c))
        items[sel] = rng.choice(pools[c], len(sel), p=pool_p[c])
    types = rng.choice(len(TYPES), cfg.events, p=MIX)
    dwell = rng.integers(500, 120_000, cfg.events)
    rating = rng.integers(1, 6, cfg.events)
    writer = pq.ParquetWriter(out / EVENTS_FILE, EVENT_SCHEMA)
    writer.write_table(pa.Table.from_pylist(rows, schema=EVENT_SCHEMA))
    for a in range(0, cfg.events, chunk):
        batch = []
        for k in range(a, min(a + chunk, cfg.events)):
            t = TYPES[types[k]]
            obj = {"type": t, "event_id": f"syn-e-{k}", "ts": _iso(float(ts[k])), "user_id": str(users[k]),
                   "item_id": str(items[k])}
            value = float("nan")
            if t == "view":
                obj["dwell_ms"] = value = int(dwell[k])
            elif t == "rate":
                obj["rating"] = value = int(rating[k])
            batch.append({"event_id": obj["event_id"], "type": t, "ts": float(ts[k]), "user_id": obj["user_id"],
                          "item_id": obj["item_id"], "value": float(value), "raw": orjson.dumps(obj)})
        if a == 0:
            parse_events([r["raw"] for r in batch[:200]])  # the JSON is valid against the event schema
        writer.write_table(pa.Table.from_pylist(batch, schema=EVENT_SCHEMA))
    writer.close()
    pq.write_table(pa.Table.from_pylist([], schema=EXAMPLE_SCHEMA), out / EXAMPLES_FILE)
    first, last = datetime.fromtimestamp(float(ts[0]), tz=timezone.utc), datetime.fromtimestamp(float(ts[-1]), tz=timezone.utc)
    meta = {"source": f"streamrec generate {cfg}", "n_events": len(rows) + cfg.events, "n_examples": 0,
            "data_start": first.isoformat(), "data_end": last.isoformat(), "window": [None, None]}
    (out / META_FILE).write_text(orjson.dumps(meta, option=orjson.OPT_INDENT_2).decode())
    return Snapshot(out, len(rows) + cfg.events, 0, first, last)
