"""The apply script's wire format (streams.store_redis): a batch of guarded writes as ONE JSON array.

redis-py packs every argument in Python (~1 us each) and a batch has ~100k of them;
orjson writes the array in one C call and Lua's cjson reads it in one.  A binary
value is replaced in the array by ``[n]``, its ARGV index.

Pure: no redis import; the script itself is ``streams.apply_lua.APPLY_LUA``.
"""

from __future__ import annotations

import math
from typing import Sequence

import orjson

from streams.store import Group, GuardedBatch


def pack_batch(
    namespace: str, ttl_s: int, batch: Sequence[Group], watermark: dict[int, int] | None
) -> list[bytes]:
    """The batch as the script's arguments: ONE JSON array plus the binary values it references."""
    flat: list[object] = [namespace, str(ttl_s), str(len(batch))]
    blobs: list[bytes] = []
    add, extend = flat.append, flat.extend
    for n, g in enumerate(batch):
        if isinstance(g, GuardedBatch):
            if n:
                raise ValueError("a GuardedBatch must be the first group of an apply")
            if len(set(g.dedupe_ids)) != len(g.dedupe_ids):
                raise ValueError("a GuardedBatch's dedupe ids must be distinct")
            extend((None, str(len(g.dedupe_ids)), *g.dedupe_ids))
        else:
            add(g.dedupe_id or "")
        add(str(len(g.writes)))
        for op, k, a, b in g.writes:
            t = type(b)
            if t is float:
                if not math.isfinite(b):  # type: ignore[arg-type]
                    raise ValueError(f"non-finite value in a write: {op} {k} {a}")
                b = repr(b)
            elif t is int:
                b = str(b)
            elif t is bytes:
                blobs.append(b)  # type: ignore[arg-type]
                extend((op, k, a, [len(blobs) + 1]))
                continue
            extend((op, k, a, b))
    wm = watermark or {}
    add(str(len(wm)))
    for p, off in wm.items():
        extend((str(p), str(off)))
    return [orjson.dumps(flat), *blobs]
