"""Where the apply script's Redis time goes, per event: decoding, walking the writes, the calls.

    python -m bench.apply_cost [--events 30000] [--per-apply 250] [--json PATH]   (bench/results/apply_cost.json)

The benchmark's interactions (``bench.common.mixed_events``, impressions left out so no
label window closes) are planned by the worker's own planner against an in-memory store,
``--per-apply`` events per apply, and packed as the worker packs them.  The same packed
applies are then sent to a Redis of its own (AOF on, fsync every second; ``--no-aof``: off) through three
scripts, in turn:

* ``decode``: only ``cjson.decode`` of the batch;
* ``walk``: decode, then build every write's key as the apply script does, with no ``redis.call``;
* ``apply``: the real apply script (``streams.apply_lua.APPLY_LUA``).

From ``INFO commandstats`` after each: the script's time per event, and the time Redis
records for the commands the script called.  In ``apply``, script time less the ``walk``
time and the commands' own time is what the calls cost beyond the commands themselves:
turning Lua values into a command and its reply back, and propagating each write to the AOF.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import redis

from bench.common import mixed_events, write_result
from bench.machine import measured
from schemas.events import Impression
from streamrec import services
from streamrec.batch_records import group
from streamrec.settings import Settings
from streams.apply_pack import pack_batch
from streams.batch import Record
from streams.pipeline import Planner
from streams.store_memory import MemoryStore
from streams.apply_lua import APPLY_LUA
from streams.worker import plan_config

DECODE_LUA = "local A = cjson.decode(ARGV[1]) return #A"
WALK_LUA = r"""
local A = cjson.decode(ARGV[1])
local ns, i, n = A[1], 6 + tonumber(A[5]), 0
local nops = tonumber(A[i]); i = i + 1
for o = 1, nops do
  local k, b = ns .. ':' .. A[i + 1], A[i + 3]
  if type(b) == 'table' then b = ARGV[b[1]] end
  n = n + #k
  i = i + 4
end
return n
"""


def packed_applies(events: int, per_apply: int) -> tuple[list[list[bytes]], int, Counter[str]]:
    """(each apply's script arguments, events, merged writes per op) as the worker would send them."""
    evs = [e for e in mixed_events(events) if not isinstance(e, Impression)]
    recs = [Record(0, k, value, "") for k, (_, _, value, _) in enumerate(group(evs, [0], per_apply))]
    planner, store, now = Planner(plan_config(Settings()), "events"), MemoryStore(), datetime.now(timezone.utc)
    out: list[list[bytes]] = []
    ops: Counter[str] = Counter()

    async def plan_all() -> None:
        for rec in recs:
            fp = await planner.plan(store, [rec], now)
            await store.apply(fp.guarded, fp.watermark)
            out.append(pack_batch("bench", 7 * 86400, fp.guarded, fp.watermark))
            ops.update(w[0] for g in fp.guarded for w in g.writes)

    asyncio.run(plan_all())
    return out, len(evs), ops


def run_script(r: redis.Redis, src: str, applies: list[list[bytes]], n: int) -> dict[str, Any]:
    sha = r.script_load(src)
    r.config_resetstat()
    for args in applies:
        r.evalsha(sha, 0, *args)
    stats = r.info("commandstats")
    inner = {k[len("cmdstat_"):]: v for k, v in stats.items()
             if k not in ("cmdstat_evalsha", "cmdstat_config|resetstat", "cmdstat_script|load")}
    return {
        "script_us_per_event": round(stats["cmdstat_evalsha"]["usec"] / n, 2),
        "commands_us_per_event": round(sum(v["usec"] for v in inner.values()) / n, 2),
        "calls_per_event": round(sum(v["calls"] for v in inner.values()) / n, 2),
    }


def run(events: int, per_apply: int, aof: bool) -> dict[str, Any]:
    applies, n, ops = packed_applies(events, per_apply)
    red = services.start_redis(services.free_port(), Path(tempfile.mkdtemp()), aof=aof, fsync="everysec")
    try:
        r = redis.Redis(port=red.port)
        res: dict[str, Any] = {name: run_script(r, src, applies, n)
                               for name, src in (("decode", DECODE_LUA), ("walk", WALK_LUA), ("apply", APPLY_LUA))}
    finally:
        red.stop()
    a = res["apply"]
    res.update(aof=aof, events=n, applies=len(applies), writes_per_event={op: round(c / n, 2) for op, c in ops.most_common()},
               call_overhead_us_per_event=round(a["script_us_per_event"] - res["walk"]["script_us_per_event"]
                                                - a["commands_us_per_event"], 2))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=30000)
    ap.add_argument("--per-apply", type=int, default=250)
    ap.add_argument("--no-aof", action="store_true", help="Redis without its append-only file (to see what AOF costs)")
    ap.add_argument("--json")
    args = ap.parse_args()
    write_result(measured(lambda: run(args.events, args.per_apply, not args.no_aof)), args.json)

if __name__ == "__main__":
    main()
