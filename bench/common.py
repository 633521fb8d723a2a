"""Shared benchmark scaffolding: private services on free ports, a settings copy, synthetic events."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import orjson
import redis

from schemas.events import Click, Event, Impression, ItemMeta, Rate, Save, View
from streams import keys
from streams.embeddings import encode_f32
from streamrec import runtime, services
from streamrec.settings import Settings

T0 = datetime(2025, 6, 1, tzinfo=timezone.utc)
VERSION = "bench"
DIM = 32


@contextlib.contextmanager
def private_infra(s: Settings) -> Iterator[tuple[Settings, dict[str, str]]]:
    """A broker and Redis (AOF, appendfsync everysec) of our own; yields settings + child env.

    SIGTERM (e.g. ``timeout``) becomes SystemExit while they run, so every ``finally``
    stops its children and nothing is left running.  Their data directory is removed
    afterwards, unless the run failed or STREAMREC_BENCH_KEEP=1 (then its path is printed)."""
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    root = Path(tempfile.mkdtemp(prefix="streamrec-bench-"))
    kafka = services.start_kafka(services.free_port(), root / "kafka")
    red = services.start_redis(services.free_port(), root / "redis", aof=True, fsync="everysec")
    env = runtime.isolated_env(kafka.port, red.port, root / "state", "b", partitions=s.topic_partitions)
    ok = False
    try:
        yield s.model_copy(update={k[len("STREAMREC_"):].lower(): v for k, v in env.items()
                                   if k != "STREAMREC_STATE_DIR" and k != "STREAMREC_TOPIC_PARTITIONS"}
                           | {"state_dir": root / "state"}), env
        ok = True
    finally:
        kafka.stop()
        red.stop()
        signal.signal(signal.SIGTERM, previous)
        cleanup(root, ok)


def cleanup(root: Path, ok: bool) -> None:
    """Remove a bench's data directory after a good run; keep it (and say where) otherwise."""
    if ok and os.environ.get("STREAMREC_BENCH_KEEP") != "1":
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"bench data kept in {root}", file=sys.stderr)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def publish_vectors(s: Settings, items: int, trained_share: float = 0.9, seed: int = 0) -> None:
    """Item factors as the trainer would publish them (docs/streams.md)."""
    rng = np.random.default_rng(seed)
    r = redis.Redis.from_url(s.redis_url)
    pipe = r.pipeline(transaction=False)
    pipe.hset(keys.VEC_META, mapping={"version": VERSION, "dim": str(DIM)})
    for k in range(int(items * trained_share)):
        pipe.set(keys.trained_item_vector(VERSION, f"i{k}"), encode_f32(rng.normal(size=DIM)))
    pipe.execute()
    r.close()


def mixed_events(n: int, users: int = 5000, items: int = 2000, seed: int = 0, prefix: str = "b",
                 spacing_s: float = 0.05, t0: datetime = T0) -> list[Event]:
    """Item metadata, then interactions with ~10% impressions, in event-time order."""
    rng = random.Random(seed)
    out: list[Event] = [ItemMeta(event_id=f"{prefix}m{k}", ts=t0, item_id=f"i{k}",
                                 categories=[f"c{k % 20}"]) for k in range(items)]
    for k in range(n - items):
        ts = t0 + timedelta(seconds=k * spacing_s)
        u, i = f"u{rng.randrange(users)}", f"i{min(items - 1, int(rng.paretovariate(1.2)) - 1 + rng.randrange(5))}"
        base = dict(event_id=f"{prefix}{k}", ts=ts, user_id=u)
        r = rng.random()
        if r < 0.1:
            out.append(Impression(**base, request_id=f"{prefix}r{k}", model_version="bench",
                                  item_ids=[f"i{rng.randrange(items)}" for _ in range(10)]))
        elif r < 0.5:
            out.append(View(**base, item_id=i, dwell_ms=int(rng.lognormvariate(9, 1.2))))
        elif r < 0.8:
            out.append(Click(**base, item_id=i))
        elif r < 0.9:
            out.append(Save(**base, item_id=i))
        else:
            out.append(Rate(**base, item_id=i, rating=rng.randint(1, 5)))
    return out


def write_result(result: dict[str, object], path: str | None) -> None:
    """A module benchmark's JSON: to ``path`` when given, and always to standard output."""
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    if path:
        Path(path).write_text(text + "\n")
    print(text, file=sys.stdout)
