"""Batched reads in one Lua call: the read script, its argument and its reply (pure).

A batch's context read is ~3 reads per event: GETs (dedupe marks, vectors: sent as
MGETs, which redis-py handles as one command each) and one HGETALL or ZRANGE per
entity.  Through a redis-py pipeline every one of the latter costs ~10 us of the
worker's Python (build, pack, parse, decode), which is ~10 % of its CPU per event.
``READ_LUA`` runs all of them inside Redis and answers with ONE JSON string that
orjson parses in one C call.  Binary values never go through it (JSON strings are
UTF-8): plain GETs stay MGETs.  A script also reads one consistent snapshot.
"""

from __future__ import annotations

from typing import Any, Sequence

import orjson

from streams import keys
from streams.store import Read

READ_LUA = r"""#!lua flags=no-writes
-- ARGV[1]: JSON [op, key, nargs, args..., op, key, ...]; the reply: a JSON array, one value per read
local R = cjson.decode(ARGV[1])
local out, n, i = {}, 0, 1
while i <= #R do
  local op, k, na = R[i], R[i + 1], R[i + 2]
  local v
  if op == 'hgetall' then v = redis.call('HGETALL', k)
  elseif op == 'zrange' then v = redis.call('ZRANGE', k, R[i + 3], R[i + 4], 'WITHSCORES')
  elseif op == 'zrevrange' then v = redis.call('ZREVRANGE', k, R[i + 3], R[i + 4], 'WITHSCORES')
  elseif op == 'hmget' then v = redis.call('HMGET', k, unpack(R, i + 3, i + 2 + na))
  elseif op == 'zrangebelow' then
    v = redis.call('ZRANGEBYSCORE', k, '-inf', '(' .. R[i + 3], 'WITHSCORES', 'LIMIT', 0, R[i + 4])
  elseif op == 'zscore' then v = redis.call('ZSCORE', k, R[i + 3])
  elseif op == 'zcard' then v = redis.call('ZCARD', k)
  else return redis.error_reply('unknown read op ' .. tostring(op)) end
  n = n + 1
  out[n] = v
  i = i + 3 + na
end
if n == 0 then return '[]' end
return cjson.encode(out)
"""


def _args(r: Read) -> list[str]:
    op, a = r.op, r.args
    if op in ("zrange", "zrevrange"):
        return [str(int(a[0])), str(int(a[1]))]
    if op == "zrangebelow":
        return [repr(float(a[0])), str(int(a[1]))]
    if op == "hmget" or op == "zscore":
        return [str(x) for x in a]
    if op in ("hgetall", "zcard"):
        return []
    raise ValueError(f"unknown read op {op!r}")


def pack_reads(namespace: str, reads: Sequence[Read]) -> bytes:
    """The script's argument for ``reads`` (no plain GETs) in ``namespace``."""
    flat: list[object] = []
    for r in reads:
        args = _args(r)
        flat += [r.op, keys.namespaced(namespace, r.key), len(args), *args]
    return orjson.dumps(flat)


def _pairs(v: Any) -> list[tuple[str, float]]:
    return [(v[j], float(v[j + 1])) for j in range(0, len(v), 2)]


def unpack_reads(reads: Sequence[Read], reply: bytes | str) -> list[Any]:
    """Each read's value, decoded as ``RedisStore.read`` returns it (see streams.store.Read).
    cjson writes an empty Lua table as ``{}`` and a missing value as ``false``."""
    got = orjson.loads(reply)
    if len(got) != len(reads):
        raise ValueError(f"read script answered {len(got)} values for {len(reads)} reads")
    out: list[Any] = []
    for r, v in zip(reads, got):
        if isinstance(v, dict):  # an empty table
            v = []
        op = r.op
        if op == "hgetall":
            out.append(dict(zip(v[::2], v[1::2])))
        elif op == "hmget":
            out.append([None if x is False else x for x in v])
        elif op in ("zrange", "zrevrange", "zrangebelow"):
            out.append(_pairs(v))
        elif op == "zscore":
            out.append(None if v is False or v == [] else float(v))
        else:  # zcard
            out.append(int(v))
    return out
