"""Many reads in one Lua call, answered as ONE JSON string: the script, its argument, its reply (pure).

Through a redis-py pipeline every read costs ~10 us of Python (build, pack, parse,
decode): ~10 % of the stream worker's CPU per event for its context reads, and
~0.1 ms per command for serving's few thousand feature reads per request.  Here
the reads go in as one JSON argument, run inside Redis, and come back as one JSON
string that orjson parses in one C call.  A script also reads one consistent
snapshot.  Used by the worker's store (``streams.store_redis``) and by serving
(``serving.batch_read``, ``serving.live_read``, which embeds ``READS_LUA``).

JSON strings are UTF-8, so binary values (vectors) never go through it: the worker
reads plain GETs as MGETs, and falls back to pipelined reads if a value is not
UTF-8.  Keys are logical, as everywhere: the script puts the namespace in front,
except for global ``streamrec:`` keys (``keys.namespaced``).
"""

from __future__ import annotations

from typing import Any, Sequence

import orjson

from streams import keys
from streams.store import Read

READS_LUA = r"""
-- answers a decoded list of reads {op, key, args...} in namespace ns (keys.namespaced: global
-- 'streamrec:' keys as they are)
local function run_reads(ns, reads)
  local out = {}
  local pre = ns .. ':'
  for n = 1, #reads do
    local rd = reads[n]
    local op, k = rd[1], rd[2]
    if string.sub(k, 1, 10) ~= 'streamrec:' then k = pre .. k end
    local r
    if op == 'hgetall' then r = redis.call('HGETALL', k)
    elseif op == 'hmget' then
      if #rd >= 3 then r = redis.call('HMGET', k, unpack(rd, 3)) else r = {} end
    elseif op == 'zrevrange' then r = redis.call('ZREVRANGE', k, rd[3], rd[4], 'WITHSCORES')
    elseif op == 'zrange' then r = redis.call('ZRANGE', k, rd[3], rd[4], 'WITHSCORES')
    elseif op == 'zrangebelow' then
      r = redis.call('ZRANGEBYSCORE', k, '-inf', '(' .. rd[3], 'WITHSCORES', 'LIMIT', 0, rd[4])
    elseif op == 'zrangebetween' then r = redis.call('ZRANGEBYSCORE', k, rd[3], rd[4], 'WITHSCORES')
    elseif op == 'zscore' then r = redis.call('ZSCORE', k, rd[3])
    elseif op == 'zcard' then r = redis.call('ZCARD', k)
    else error('unsupported read op ' .. tostring(op)) end
    out[n] = r
  end
  return out
end
"""

READ_LUA = "#!lua flags=no-writes\n" + READS_LUA + r"""
-- ARGV[1]: namespace ('@ns': follow the live pointer, `streamrec replay --swap`); ARGV[2]: the reads
local ns = ARGV[1]
if string.sub(ns, 1, 1) == '@' then
  ns = redis.call('GET', 'streamrec:live') or string.sub(ns, 2)
end
return cjson.encode(run_reads(ns, cjson.decode(ARGV[2])))
"""

SUPPORTED = frozenset({"hgetall", "hmget", "zrevrange", "zrange", "zrangebelow", "zrangebetween", "zscore", "zcard"})
assert keys.GLOBAL_PREFIX == "streamrec:"  # READS_LUA's test of global keys


def _args(r: Read) -> tuple[str, ...]:
    if r.op == "zrangebelow":
        return repr(float(r.args[0])), str(int(r.args[1]))
    if r.op == "zrangebetween":
        return repr(float(r.args[0])), repr(float(r.args[1]))
    return tuple(str(a) for a in r.args)


def encode_reads(reads: Sequence[Read]) -> bytes:
    """The reads as the script's JSON argument (after checking each op is supported)."""
    for r in reads:
        if r.op not in SUPPORTED:
            raise ValueError(f"read op {r.op!r} is not supported by the read script")
    return orjson.dumps([(r.op, r.key, *_args(r)) for r in reads])


def _pairs(v: Any) -> list[tuple[str, float]]:
    if not isinstance(v, list):  # cjson encodes an empty table as {}
        return []
    return [(v[j], float(v[j + 1])) for j in range(0, len(v), 2)]


def _decode(r: Read, v: Any) -> Any:
    op = r.op
    if op == "hgetall":
        if not isinstance(v, list):
            return {}
        return {v[j]: v[j + 1] for j in range(0, len(v), 2)}
    if op == "hmget":  # a missing field is false
        return [x if isinstance(x, str) else None for x in v] if isinstance(v, list) else [None] * len(r.args)
    if op in ("zrevrange", "zrange", "zrangebelow", "zrangebetween"):
        return _pairs(v)
    if op == "zscore":
        return float(v) if isinstance(v, str) else None
    return int(v) if isinstance(v, (int, float)) else 0


def decode_results(reads: Sequence[Read], values: Any) -> list[Any]:
    """The script's decoded JSON reply in ``Read`` result shapes (see ``streams.store.Read``)."""
    if isinstance(values, dict):  # no results encodes as {}
        values = []
    if len(values) != len(reads):
        raise ValueError(f"the read script answered {len(values)} values for {len(reads)} reads")
    return [_decode(r, v) for r, v in zip(reads, values)]
