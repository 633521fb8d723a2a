"""What one dedupe mark costs Redis in memory: a key with a TTL (as the apply script sets them)
against a member of a set, for sizing ``STREAMREC_DEDUPE_TTL_S``.

    python -m bench.dedupe_memory [--marks 200000] [--json PATH]   (bench/results/dedupe_memory.json)

A Redis of its own, AOF off, started with glibc's allocator (``STREAMREC_REDIS_MIMALLOC=0``:
``used_memory`` is what the allocator reports, and glibc's figure is the one that adds up).
Each layout is filled from an empty database with ``--marks`` ids shaped like the soak's
(``soak-000000123``), pipelined; reported: bytes of ``used_memory`` per mark, and what the
default 7-day TTL holds at 2,000 events/s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import redis

from bench.common import write_result
from bench.machine import measured
from streamrec import services

WEEK_S = 7 * 86400
LAYOUTS = ("key_with_ttl", "set_member")


def _fill(r: redis.Redis, layout: str, marks: int, namespace: str = "streamrec") -> float:
    r.flushall(asynchronous=False)
    time.sleep(0.2)
    base = int(r.info("memory")["used_memory"])
    pipe = r.pipeline(transaction=False)
    for i in range(marks):
        eid = f"soak-{i:09d}"
        if layout == "key_with_ttl":
            pipe.set(f"{namespace}:dedupe:{eid}", "1", nx=True, ex=WEEK_S)
        else:
            pipe.sadd(f"{namespace}:dedupe:{i % 64}", eid)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return (int(r.info("memory")["used_memory"]) - base) / marks


def run(marks: int) -> dict[str, object]:
    before = os.environ.get("STREAMREC_REDIS_MIMALLOC")
    os.environ["STREAMREC_REDIS_MIMALLOC"] = "0"  # read when the server starts
    try:
        with tempfile.TemporaryDirectory(prefix="streamrec-dedupe-mem-") as tmp:
            red = services.start_redis(services.free_port(), Path(tmp) / "redis", aof=False)
            try:
                r = redis.Redis(port=red.port)
                per = {layout: round(_fill(r, layout, marks), 1) for layout in LAYOUTS}
            finally:
                red.stop()
    finally:
        if before is None:
            os.environ.pop("STREAMREC_REDIS_MIMALLOC", None)
        else:
            os.environ["STREAMREC_REDIS_MIMALLOC"] = before
    at_2000 = 2000 * WEEK_S
    return {"marks": marks, "bytes_per_mark": per,
            "gb_for_7_days_at_2000_events_per_s": {k: round(v * at_2000 / 1e9, 1) for k, v in per.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--marks", type=int, default=200_000)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    write_result(measured(lambda: run(args.marks)), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
