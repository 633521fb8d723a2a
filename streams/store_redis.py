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
from streams.apply_lua import APPLY_LUA
from streams.apply_pack import pack_batch
from streams.read_pack import READ_LUA, decode_results, encode_reads
from streams.store import Applied, ApplyResult, Group, Read, StoreUnavailable

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
        self._prepared: tuple[Sequence[Group], dict[int, int] | None, list[bytes]] | None = None

    def prepare_apply(self, batch: Sequence[Group], watermark: dict[int, int] | None = None) -> None:
        """Pack the next apply's request now (the worker does it while the apply before runs:
        packing is ~7 % of its time); used only by an ``apply`` / ``apply_begin`` of these same objects."""
        self._prepared = (batch, watermark, self._args(batch, watermark))

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
            res = await self._script(args=self._take_prepared(batch, watermark))
        except (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError) as err:
            raise StoreUnavailable(f"Redis unavailable: {err}") from err
        return _result(res)

    def _take_prepared(self, batch: Sequence[Group], watermark: dict[int, int] | None) -> list[bytes]:
        """The prepared request if it was made for these objects, else packed now; either way the
        prepared one is dropped."""
        pre, self._prepared = self._prepared, None
        if pre is not None and pre[0] is batch and pre[1] is watermark:
            return pre[2]
        return self._args(batch, watermark)

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
        args = self._take_prepared(batch, watermark)
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
