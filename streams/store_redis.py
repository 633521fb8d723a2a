"""Redis ``Store``: one Lua call per consumed batch applies every write and its dedupe mark.

The Lua script runs atomically inside Redis, so an event's writes and its
``dedupe:{event_id}`` mark are applied together or not at all; a worker killed
between batches re-delivers events whose marks make them no-ops.  Keys are
passed in ARGV because they are computed per event; on Redis Cluster run one
call per hash slot (every entity key carries a {hash tag}).
"""

from __future__ import annotations

from typing import Any, Sequence

import orjson
import redis.asyncio as aioredis
import redis.exceptions as rexc

from streams import keys
from streams.digest import Value, digest_items
from streams.apply_pack import pack_batch
from streams.read_pack import READ_LUA, decode_results, encode_reads
from streams.store import Applied, ApplyResult, Group, Read, StoreUnavailable


APPLY_LUA = r"""
-- ARGV[1]: the whole batch as one JSON array of strings (one argument for redis-py to pack,
-- one cjson.decode here); binary values travel as extra arguments, referenced as [n] = ARGV[n]
local A = cjson.decode(ARGV[1])
local ns = A[1]
if string.sub(ns, 1, 1) == '@' then
  -- follow the live pointer (set by `streamrec replay --swap`), atomically with the writes
  ns = redis.call('GET', 'streamrec:live') or string.sub(ns, 2)
end
local ttl = tonumber(A[2])
local ngroups = tonumber(A[3])
local i = 4
local applied, dups = 0, 0
local LN2 = math.log(2)
local VFMT = {}  -- vector dimension -> struct formats
local stats = ns .. ':stats'
local created = {}  -- keys where this apply's hincrby created a field (for expirenew)
-- applies nops writes starting at A[i]; returns the index after them
local function apply_ops(i, nops)
  for o = 1, nops do
    local op, k, a, b = A[i], ns .. ':' .. A[i + 1], A[i + 2], A[i + 3]
    if type(b) == 'table' then b = ARGV[b[1]] end
    if op == 'hincrby' then
      -- the result equals the increment only when the field is new (counters only grow)
      if redis.call('HINCRBY', k, a, b) == tonumber(b) then created[k] = true end
    elseif op == 'hincrbyfloat' then redis.call('HINCRBYFLOAT', k, a, b)
    elseif op == 'hset' then redis.call('HSET', k, a, b)
    elseif op == 'hsetnx' then redis.call('HSETNX', k, a, b)
    elseif op == 'hmax' or op == 'hmin' then
      local cur = redis.call('HGET', k, a)
      if (not cur) or (op == 'hmax' and tonumber(b) > tonumber(cur))
         or (op == 'hmin' and tonumber(b) < tonumber(cur)) then
        redis.call('HSET', k, a, b)
      end
    elseif op == 'zlogadd' then
      local old = redis.call('ZSCORE', k, a)
      local v = tonumber(b)
      if old then
        old = tonumber(old)
        local hi, lo = old, v
        if v > old then hi, lo = v, old end
        v = hi + math.log(1 + math.exp((lo - hi) * LN2)) / LN2
      end
      redis.call('ZADD', k, string.format('%.17g', v), a)
    elseif op == 'zmax' then redis.call('ZADD', k, 'GT', b, a)
    elseif op == 'ztrim' then redis.call('ZREMRANGEBYRANK', k, 0, -(tonumber(b) + 1))
    elseif op == 'set' then redis.call('SET', k, b)
    elseif op == 'expire' then redis.call('EXPIRE', k, b)
    elseif op == 'expirenew' then
      if created[k] then redis.call('EXPIRE', k, b) end
    elseif op == 'zrem' then redis.call('ZREM', k, a)
    elseif op == 'zrembelow' then redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. b)
    elseif op == 'del' then redis.call('DEL', k)
    elseif op == 'vlogadd' then
      -- log-scaled weighted vector sum, see streams/embeddings.py (same arithmetic)
      -- one struct.unpack / struct.pack per vector (not one per element): the same arithmetic
      local n = #b / 8 - 1
      local fd = VFMT[n]
      if not fd then
        fd = {'<' .. string.rep('d', n + 1), '<' .. string.rep('d', n + 2), '<' .. string.rep('f', n)}
        VFMT[n] = fd
      end
      local p = {struct.unpack(fd[1], b)}
      local L = p[1]
      local cur = redis.call('GET', k)
      local s, D = L, 0
      local c
      if cur and #cur == (n + 2) * 8 then
        c = {struct.unpack(fd[2], cur)}
        s, D = c[1], c[2]
      end
      local s2 = s
      if L > s2 then s2 = L end
      local fo, fn = 2 ^ (s - s2), 2 ^ (L - s2)
      D = D * fo + fn
      local acc, mean = {s2, D}, {}
      if c then
        for j = 1, n do
          local x = c[j + 2] * fo + p[j + 1] * fn
          acc[j + 2] = x
          mean[j] = x / D
        end
      else
        for j = 1, n do
          local x = 0 * fo + p[j + 1] * fn
          acc[j + 2] = x
          mean[j] = x / D
        end
      end
      redis.call('SET', k, struct.pack(fd[2], unpack(acc, 1, n + 2)))
      redis.call('SET', ns .. ':' .. a, struct.pack(fd[3], unpack(mean, 1, n)))
    else return redis.error_reply('unknown write op ' .. op) end
    i = i + 4
  end
  return i
end
for g = 1, ngroups do
  local did = A[i]
  if did == cjson.null then
    -- a GuardedBatch (always the first group): every id unmarked, or nothing is written
    local nids = tonumber(A[i + 1]); i = i + 2
    for j = 0, nids - 1 do
      if not redis.call('SET', ns .. ':dedupe:' .. A[i + j], '1', 'NX', 'EX', ttl) then
        for q = 0, j - 1 do redis.call('DEL', ns .. ':dedupe:' .. A[i + q]) end
        return {0, 0, 1}
      end
    end
    i = i + nids
    local nops = tonumber(A[i]); i = i + 1
    i = apply_ops(i, nops)
    applied = applied + nids
  else
    local nops = tonumber(A[i + 1]); i = i + 2
    local ok = true
    if did ~= '' then
      ok = redis.call('SET', ns .. ':dedupe:' .. did, '1', 'NX', 'EX', ttl)
    end
    if ok then
      applied = applied + 1
      i = apply_ops(i, nops)
    else
      dups = dups + 1
      redis.call('HINCRBY', stats, 'duplicates', 1)
      i = i + 4 * nops
    end
  end
end
local nwm = tonumber(A[i]); i = i + 1
local wmkey = ns .. ':watermark'
for w = 1, nwm do
  local p, off = A[i], tonumber(A[i + 1]); i = i + 2
  local cur = redis.call('HGET', wmkey, p)
  if (not cur) or tonumber(cur) < off then redis.call('HSET', wmkey, p, off) end
end
return {applied, dups, 0}
"""


class RedisStore:
    """``follow_live``: writes go to the namespace named by the live pointer
    (``streamrec:live``), falling back to ``namespace`` when it is unset."""

    def __init__(
        self,
        client: aioredis.Redis,
        namespace: str,
        dedupe_ttl_s: int = 7 * 86400,
        follow_live: bool = False,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.dedupe_ttl_s = dedupe_ttl_s
        self.follow_live = follow_live
        self._script = client.register_script(APPLY_LUA)
        self._read_script = client.register_script(READ_LUA)

    async def resolve(self) -> str:
        """The namespace reads should use now."""
        if not self.follow_live:
            return self.namespace
        try:
            live = await self.client.get(keys.LIVE_POINTER)
        except (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError) as err:
            raise StoreUnavailable(f"Redis unavailable: {err}") from err
        return live.decode() if isinstance(live, bytes) else (live or self.namespace)

    async def apply(
        self, batch: Sequence[Group], watermark: dict[int, int] | None = None
    ) -> ApplyResult:
        if not batch and not watermark:
            return ApplyResult(0, 0)
        try:
            res = await self._script(args=self._args(batch, watermark))
        except (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError) as err:
            raise StoreUnavailable(f"Redis unavailable: {err}") from err
        return _result(res)

    def _args(self, batch: Sequence[Group], watermark: dict[int, int] | None) -> list[bytes]:
        """The apply script's arguments; ``@namespace`` makes the script follow the live pointer."""
        ns = "@" + self.namespace if self.follow_live else self.namespace
        return pack_batch(ns, self.dedupe_ttl_s, batch, watermark)

    async def apply_begin(
        self, batch: Sequence[Group], watermark: dict[int, int] | None = None
    ) -> "Applied | _Pending":
        """Send the apply on a connection of its own and return once Redis has the whole request
        (the write buffer is flushed to the socket); ``result()`` reads the answer."""
        if not batch and not watermark:
            return Applied(ApplyResult(0, 0))
        args = self._args(batch, watermark)
        pool = self.client.connection_pool
        try:
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        except (rexc.ConnectionError, rexc.TimeoutError, OSError) as err:
            raise StoreUnavailable(f"Redis unavailable: {err}") from err
        try:
            await conn.send_command("EVALSHA", self._script.sha, 0, *args)
            writer = getattr(conn, "_writer", None)
            transport = getattr(writer, "transport", None)
            if transport is not None and transport.get_write_buffer_size():
                # drain() returns at the low-water mark: wait until every byte is out
                transport.set_write_buffer_limits(high=0)
                await writer.drain()  # type: ignore[union-attr]
        except (rexc.ConnectionError, rexc.TimeoutError, OSError) as err:
            await _drop(pool, conn)
            raise StoreUnavailable(f"Redis unavailable: {err}") from err
        except BaseException:
            await _drop(pool, conn)
            raise
        return _Pending(self, conn, args)

    async def read(self, reads: Sequence[Read], namespace: str | None = None) -> list[Any]:
        """One round trip: plain GETs (dedupe marks, vectors: most of a batch's reads) as MGETs of up
        to 1000 keys, every other read inside one read-script call (streams.read_pack)."""
        if not reads:
            return []
        ns = namespace or (await self.resolve() if self.follow_live else self.namespace)
        gets = [n for n, r in enumerate(reads) if r.op == "get"]
        rest = [n for n, r in enumerate(reads) if r.op != "get"]
        others = [reads[n] for n in rest]
        payload = encode_reads(others) if others else b""
        for attempt in (0, 1):
            pipe = self.client.pipeline(transaction=False)
            for start in range(0, len(gets), 1000):
                pipe.mget([keys.namespaced(ns, reads[n].key) for n in gets[start:start + 1000]])
            if others:
                # read-only (EVALSHA_RO): runs on replicas too, and is told apart from the applies in
                # INFO commandstats
                pipe.execute_command("EVALSHA_RO", self._read_script.sha, 0, ns, payload)
            try:
                replies = await pipe.execute()
                break
            except rexc.NoScriptError:  # a restarted Redis has no scripts: load it, send again
                if attempt:
                    raise
                await self.client.script_load(READ_LUA)
            except (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError) as err:
                raise StoreUnavailable(f"Redis unavailable: {err}") from err
        nm = (len(gets) + 999) // 1000
        out: list[Any] = [None] * len(reads)
        for n, v in zip(gets, (v for chunk in replies[:nm] for v in chunk)):
            out[n] = v
        if others:
            try:
                values = decode_results(others, orjson.loads(replies[nm]))
            except orjson.JSONDecodeError:  # a value that is not UTF-8: read those the slow way
                values = await self._read_pipeline(others, ns)
            for n, v in zip(rest, values):
                out[n] = v
        return out

    async def _read_pipeline(self, reads: Sequence[Read], ns: str) -> list[Any]:
        """The reads as one pipelined command each (values of any bytes)."""
        pipe = self.client.pipeline(transaction=False)
        for r in reads:
            k = keys.namespaced(ns, r.key)
            if r.op == "hgetall":
                pipe.hgetall(k)
            elif r.op == "hmget":
                pipe.hmget(k, list(r.args))
            elif r.op == "zrevrange":
                pipe.zrevrange(k, int(r.args[0]), int(r.args[1]), withscores=True)
            elif r.op == "zrange":
                pipe.zrange(k, int(r.args[0]), int(r.args[1]), withscores=True)
            elif r.op == "zrangebelow":
                pipe.zrangebyscore(k, "-inf", f"({float(r.args[0])!r}", start=0, num=int(r.args[1]),
                                   withscores=True)
            elif r.op == "zrangebetween":
                pipe.zrangebyscore(k, repr(float(r.args[0])), repr(float(r.args[1])), withscores=True)
            elif r.op == "zscore":
                pipe.zscore(k, r.args[0])
            elif r.op == "zcard":
                pipe.zcard(k)
            else:
                raise ValueError(f"unknown read op {r.op!r}")
        try:
            replies = await pipe.execute()
        except (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError) as err:
            raise StoreUnavailable(f"Redis unavailable: {err}") from err
        return [_decode(r, v) for r, v in zip(reads, replies)]

    async def digest(self) -> str:
        return digest_items(await self.dump(await self.resolve()))

    async def dump(self, namespace: str) -> list[tuple[str, str, Value]]:
        prefix = namespace + ":"
        names = [k async for k in self.client.scan_iter(match=prefix + "*", count=1000)]
        out: list[tuple[str, str, Value]] = []
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            pipe = self.client.pipeline(transaction=False)
            for k in chunk:
                pipe.type(k)
            types = [t.decode() if isinstance(t, bytes) else t for t in await pipe.execute()]
            pipe = self.client.pipeline(transaction=False)
            for k, t in zip(chunk, types):
                if t == "hash":
                    pipe.hgetall(k)
                elif t == "zset":
                    pipe.zrange(k, 0, -1, withscores=True)
                else:
                    pipe.get(k)
            for k, t, v in zip(chunk, types, await pipe.execute()):
                logical = (k.decode() if isinstance(k, bytes) else k)[len(prefix):]
                if t == "hash":
                    out.append((logical, t, {_s(f): _s(x) for f, x in v.items()}))
                elif t == "zset":
                    out.append((logical, t, {_s(m): float(s) for m, s in v}))
                elif v is not None:
                    out.append((logical, "string", v))
        return out


async def _drop(pool: Any, conn: Any) -> None:
    """Give back a connection whose request or reply may be half sent or half read: closed first,
    so the pool never hands out a connection with a stray reply pending."""
    await conn.disconnect(nowait=True)
    await pool.release(conn)


class _Pending:
    """An apply sent by ``RedisStore.apply_begin``; ``result()`` reads its answer once."""

    def __init__(self, store: RedisStore, conn: Any, args: list[bytes]) -> None:
        self.store, self.conn, self.args = store, conn, args

    async def result(self) -> ApplyResult:
        pool = self.store.client.connection_pool
        conn, self.conn = self.conn, None
        if conn is None:
            raise RuntimeError("the result of an apply is read once")
        try:
            res = await conn.read_response()
        except rexc.NoScriptError:  # Redis restarted and lost its scripts: nothing ran, send it again
            await pool.release(conn)
            try:
                res = await self.store._script(args=self.args)
            except (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError) as err:
                raise StoreUnavailable(f"Redis unavailable: {err}") from err
        except (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError, OSError) as err:
            await _drop(pool, conn)
            raise StoreUnavailable(f"Redis unavailable: {err}") from err
        except BaseException:
            await _drop(pool, conn)
            raise
        else:
            await pool.release(conn)
        return _result(res)


def _result(res: Any) -> ApplyResult:
    """The apply script's reply ``{applied, duplicates, conflict}``."""
    return ApplyResult(int(res[0]), int(res[1]), bool(int(res[2])))


def _s(v: bytes | str) -> str:
    return v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v


def _decode(r: Read, v: Any) -> Any:
    if r.op == "hgetall":
        return {_s(f): _s(x) for f, x in v.items()}
    if r.op == "hmget":
        return [None if x is None else _s(x) for x in v]
    if r.op in ("zrevrange", "zrange", "zrangebelow", "zrangebetween"):
        return [(_s(m), float(s)) for m, s in v]
    if r.op == "zscore":
        return None if v is None else float(v)
    return v
