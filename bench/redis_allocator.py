"""Redis CPU of the worker's batches on glibc malloc against mimalloc, in one run.

    python -m bench.redis_allocator [--events 40000] [--json PATH]   (bench/results/redis_allocator.json)

Two Redis servers from the same binary (AOF, ``appendfsync everysec``), one started with
``STREAMREC_REDIS_MIMALLOC=0``.  The same worker batches (``bench.common.mixed_events``,
every feature, labels, vectors: the real ``BatchProcessor`` on a ``RedisStore``) go to
both, alternating chunk by chunk so that machine noise hits both alike; each server's
``used_cpu_user + used_cpu_sys`` is read around its own chunks.  No broker: only Redis's
side of the worker's reads and applies is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from bench.common import mixed_events, publish_vectors, write_result
from bench.machine import measured
from schemas.codec import encode
from schemas.events import Impression
from streamrec import services
from streamrec.settings import Settings
from streams.batch import Record
from streams.processor import BatchProcessor
from streams.store_redis import RedisStore
from streams.worker import plan_config

CHUNK = 1000  # records per alternation (one worker batch)


def cpu_s(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def start(root: Path, name: str, mimalloc: bool) -> services.Service:
    old = os.environ.get("STREAMREC_REDIS_MIMALLOC")
    os.environ["STREAMREC_REDIS_MIMALLOC"] = "1" if mimalloc else "0"
    try:
        return services.start_redis(services.free_port(), root / name, aof=True, fsync="everysec")
    finally:
        if old is None:
            del os.environ["STREAMREC_REDIS_MIMALLOC"]
        else:
            os.environ["STREAMREC_REDIS_MIMALLOC"] = old


def records(n: int, partitions: int, topic_imps: str) -> list[Record]:
    out: list[Record] = []
    offsets: dict[tuple[str, int], int] = {}
    for e in mixed_events(n):
        topic = topic_imps if isinstance(e, Impression) else ""
        p = zlib.crc32(str(getattr(e, "user_id", getattr(e, "item_id", ""))).encode()) % partitions
        off = offsets.get((topic, p), 0)
        offsets[(topic, p)] = off + 1
        out.append(Record(p, off, encode(e), topic))
    return out


async def run(n: int) -> dict[str, Any]:
    s = Settings()
    recs = records(n, s.topic_partitions, s.topic_impressions)
    with tempfile.TemporaryDirectory(prefix="streamrec-alloc-") as tmp:
        root = Path(tmp)
        servers = {"libc": start(root, "libc", False), "mimalloc": start(root, "mimalloc", True)}
        try:
            sync = {k: redis.Redis(port=v.port) for k, v in servers.items()}
            for v in servers.values():  # trained item vectors, so the user and item fold-ins run
                publish_vectors(s.model_copy(update={"redis_url": f"redis://127.0.0.1:{v.port}/0"}), 2000)
            clients = {k: aioredis.Redis(port=v.port) for k, v in servers.items()}

            async def discard(v: bytes, k: bytes | None) -> None:
                return None

            procs = {k: BatchProcessor(RedisStore(c, "alloc"), discard, lambda: datetime.now(timezone.utc),
                                       s.topic_events, plan_config(s), training_sink=discard)
                     for k, c in clients.items()}
            spent = {k: 0.0 for k in servers}
            for n_chunk, start_at in enumerate(range(0, len(recs), CHUNK)):
                chunk = recs[start_at:start_at + CHUNK]
                order = list(servers) if n_chunk % 2 == 0 else list(reversed(servers))
                for k in order:
                    before = cpu_s(sync[k])
                    await procs[k].process(chunk)
                    spent[k] += cpu_s(sync[k]) - before
            digests = {k: await p.store.digest() for k, p in procs.items()}
            for c in clients.values():
                await c.aclose()
            mapped = {k: "libmimalloc" in Path(f"/proc/{v.proc.pid}/maps").read_text() for k, v in servers.items()}
        finally:
            for v in servers.values():
                v.stop()
    per_event = {k: round(v / len(recs) * 1e6, 1) for k, v in spent.items()}
    return {"events": len(recs), "redis_cpu_us_per_event": per_event,
            "ratio_mimalloc_to_libc": round(per_event["mimalloc"] / per_event["libc"], 3),
            "same_state": digests["libc"] == digests["mimalloc"], "mimalloc_mapped": mapped}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    write_result(measured(lambda: asyncio.run(run(args.events))), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
