"""What a closing impression reads of a busy user's label buffer: all of it, or only its window.

    python -m bench.close_read [--users 100] [--buffered 7200] [--json PATH]   (bench/results/close_read.json)

Each of ``--users`` users gets ``--buffered`` interactions in ``lbl:ix:{u}``, one a second (what
``label_buffer_s``, 2 hours, holds for a user sending an event a second), in a Redis of its own.
Then, alternating, each user's buffer is read through ``RedisStore.read`` as closes read it:
whole (``zrange 0 -1``, what closes read before) and as ``label_flow.buffer_read`` reads it (the
impression's 30-minute window). Each mode runs ``--rounds`` times, interleaved, so machine noise
hits both alike; reported: the best round's wall time and this process's CPU per read, and the
members read.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import orjson
import redis.asyncio as aioredis

from bench.common import write_result
from bench.machine import measured
from schemas.events import Impression
from streamrec import services
from streams import keys
from streams.label_flow import LabelFlowConfig, buffer_read
from streams.store import Guarded, Read
from streams.store_redis import RedisStore
from streams.writes import zmax

T0 = 1_700_000_000.0


async def _fill(store: RedisStore, users: int, buffered: int) -> None:
    for u in range(users):
        ws = [zmax(keys.label_buffer(f"u{u}"), orjson.dumps([f"e{u}-{n}", "click", f"i{n % 500}", None]).decode(),
                   T0 + n) for n in range(buffered)]
        for s in range(0, len(ws), 2000):
            await store.apply([Guarded(f"fill-{u}-{s}", tuple(ws[s:s + 2000]))])


async def _time(store: RedisStore, users: int, read: Callable[[int], Read]) -> tuple[float, float, float]:
    t, c = time.perf_counter(), time.process_time()
    members = 0
    for u in range(users):
        members += len((await store.read([read(u)]))[0])
    return (time.perf_counter() - t) / users * 1000, (time.process_time() - c) / users * 1000, members / users


async def run(port: int, users: int, buffered: int, rounds: int) -> dict[str, object]:
    client = aioredis.Redis(port=port)
    store = RedisStore(client, "bench", 3600)
    cfg = LabelFlowConfig()
    # an impression in the middle of the buffer: its window lies wholly inside it
    imp_ts = datetime.fromtimestamp(T0 + buffered / 2, timezone.utc)
    try:
        await _fill(store, users, buffered)
        modes: dict[str, Callable[[int], Read]] = {
            "whole": lambda u: Read("zrange", keys.label_buffer(f"u{u}"), (0, -1)),
            "window": lambda u: buffer_read(f"u{u}", Impression(
                event_id=f"imp{u}", ts=imp_ts, user_id=f"u{u}", request_id="r", item_ids=["i0"],
                model_version="v"), cfg),
        }
        got: dict[str, list[tuple[float, float, float]]] = {m: [] for m in modes}
        for _ in range(rounds):
            for name, read in modes.items():
                got[name].append(await _time(store, users, read))
    finally:
        await client.aclose()
    out: dict[str, object] = {"users": users, "buffered_per_user": buffered, "rounds": rounds}
    for name, runs in got.items():
        out[name] = {"wall_ms_per_read": round(min(r[0] for r in runs), 3),
                     "client_cpu_ms_per_read": round(min(r[1] for r in runs), 3),
                     "members_per_read": runs[0][2]}
    whole, window = got["whole"], got["window"]
    out["ratio_window_to_whole_wall"] = round(min(r[0] for r in window) / min(r[0] for r in whole), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--buffered", type=int, default=7200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    def bench() -> dict[str, object]:
        with tempfile.TemporaryDirectory(prefix="streamrec-close-read-") as tmp:
            red = services.start_redis(services.free_port(), Path(tmp) / "redis", aof=False)
            try:
                return asyncio.run(run(red.port, args.users, args.buffered, args.rounds))
            finally:
                red.stop()

    write_result(measured(bench), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
