"""Many reads in ONE Redis round trip, returned as ONE reply (the read script of streams.read_pack).

For a few thousand reads (300 candidates x ~9 feature keys) redis-py would spend
~0.1 ms of Python per command packing and parsing; the read script takes them as
one JSON argument and answers with one JSON string.  It also resolves the
live-namespace pointer (``streamrec:live``), so there is no extra round trip for
it.  Keys are passed in ARGV (computed per request), like the worker's apply
script: single Redis node, or one call per hash slot on Redis Cluster.
"""

from __future__ import annotations

from typing import Any, Sequence

import orjson
import redis.asyncio as aioredis
import redis.exceptions as rexc

from streams import keys
from streams.read_pack import READ_LUA, READS_LUA, SUPPORTED, decode_results, encode_reads
from streams.store import Read, StoreUnavailable

REDIS_DOWN = (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError, OSError)


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


__all__ = ["BatchReader", "READS_LUA", "SUPPORTED", "decode_results", "encode_reads", "keys", "StoreUnavailable"]
