"""Many reads in ONE Redis round trip, returned as ONE reply.

``RedisStore.read`` pipelines one command per read; for a few thousand reads
(300 candidates x ~9 feature keys) redis-py spends ~0.1 ms of Python per
command packing and parsing.  Here a Lua script runs every read inside Redis
and returns a single JSON string (one ``orjson.loads``); the reads go in as one
JSON argument too, so packing is one argument instead of thousands.
The script also resolves the live-namespace pointer (``streamrec:live``), so
there is no extra round trip for it.  Results have the same shapes as
``streams.store.Read`` documents.  Keys are passed in ARGV (computed per
request), like the worker's apply script: single Redis node, or one call per
hash slot on Redis Cluster.
"""

from __future__ import annotations

from typing import Any, Sequence

import orjson
import redis.asyncio as aioredis
import redis.exceptions as rexc

from streams import keys
from streams.store import Read, StoreUnavailable

READS_LUA = r"""
-- answers a decoded list of reads [op, key, args...] under namespace ns (shared by the live reader)
local function run_reads(ns, reads)
  local out = {}
  for n = 1, #reads do
    local rd = reads[n]
    local op, k = rd[1], ns .. ':' .. rd[2]
    local r
    if op == 'hgetall' then r = redis.call('HGETALL', k)
    elseif op == 'hmget' then
      if #rd >= 3 then r = redis.call('HMGET', k, unpack(rd, 3)) else r = {} end
    elseif op == 'zrevrange' then r = redis.call('ZREVRANGE', k, rd[3], rd[4], 'WITHSCORES')
    elseif op == 'zscore' then r = redis.call('ZSCORE', k, rd[3])
    elseif op == 'zcard' then r = redis.call('ZCARD', k)
    else error('unsupported read op ' .. op) end
    out[n] = r
  end
  return out
end
"""

READ_LUA = READS_LUA + r"""
local ns = ARGV[1]
if string.sub(ns, 1, 1) == '@' then
  ns = redis.call('GET', 'streamrec:live') or string.sub(ns, 2)
end
return cjson.encode(run_reads(ns, cjson.decode(ARGV[2])))
"""

SUPPORTED = frozenset({"hgetall", "hmget", "zrevrange", "zscore", "zcard"})
REDIS_DOWN = (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError, OSError)


def _decode(r: Read, v: Any) -> Any:
    if r.op == "hgetall":
        if not isinstance(v, list):  # cjson encodes an empty table as {}
            return {}
        return {v[j]: v[j + 1] for j in range(0, len(v), 2)}
    if r.op == "hmget":
        return [x if isinstance(x, str) else None for x in v] if isinstance(v, list) else [None] * len(r.args)
    if r.op == "zrevrange":
        if not isinstance(v, list):
            return []
        return [(v[j], float(v[j + 1])) for j in range(0, len(v), 2)]
    if r.op == "zscore":
        return float(v) if isinstance(v, str) else None
    return int(v) if isinstance(v, (int, float)) else 0


class BatchReader:
    """``await reader.read(reads)``: one EVALSHA, one reply."""

    def __init__(self, client: aioredis.Redis, namespace: str, follow_live: bool = True) -> None:
        self.client = client
        self.ns_arg = ("@" if follow_live else "") + namespace
        self._script = client.register_script(READ_LUA)

    async def read(self, reads: Sequence[Read]) -> list[Any]:
        if not reads:
            return []
        args: list[bytes | str] = [self.ns_arg, encode_reads(reads)]
        try:
            raw = await self._script(args=args)
        except REDIS_DOWN as err:
            raise StoreUnavailable(f"Redis unavailable: {err}") from err
        return decode_results(reads, orjson.loads(raw))


def encode_reads(reads: Sequence[Read]) -> bytes:
    """The reads as the script's JSON argument (after checking each op is supported)."""
    for r in reads:
        if r.op not in SUPPORTED:
            raise ValueError(f"read op {r.op!r} is not supported by the batch reader")
    return orjson.dumps([(r.op, r.key, *(str(a) for a in r.args)) for r in reads])


def decode_results(reads: Sequence[Read], values: Any) -> list[Any]:
    """The script's decoded JSON reply in ``Read`` result shapes."""
    if isinstance(values, dict):  # no results encodes as {}
        values = []
    return [_decode(r, v) for r, v in zip(reads, values)]


__all__ = ["BatchReader", "keys", "StoreUnavailable"]
