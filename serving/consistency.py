"""Read-your-writes for ``min_watermark``: wait until the worker has applied the client's events.

``serving.freshness.wait_for_watermark(store, token, timeout_s)`` is being
written by the streams engineer; it is used as soon as it exists.  Until then
this module polls the namespace's ``watermark`` hash (partition -> next offset,
raised atomically with the writes) through the batch reader.
TODO(streams): delete the fallback once serving/freshness.py lands.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from typing import Any, Awaitable, Callable, Sequence

from serving.watermark import decode_token, reached
from streams import keys
from streams.store import Read

ReadFn = Callable[[Sequence[Read]], Awaitable[list[Any]]]


def parse(token: str) -> dict[int, int]:
    """Raises ValueError with a clear message for a bad token (-> 422)."""
    return decode_token(token)


async def _poll(read: ReadFn, token: str, timeout_s: float) -> bool:
    wanted = decode_token(token)
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        (marks,) = await read([Read("hgetall", keys.WATERMARK)])
        applied = {int(p): int(o) for p, o in (marks or {}).items()}
        if reached(applied, wanted):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


async def wait_min_watermark(store: Any, read: ReadFn, token: str, timeout_s: float) -> bool:
    """True once the watermark is reached; False on timeout (the answer may then be stale)."""
    try:
        freshness = importlib.import_module("serving.freshness")
    except ImportError:
        return await _poll(read, token, timeout_s)
    got = await freshness.wait_for_watermark(store, token, timeout_s)
    return bool(got) if isinstance(got, bool) else True
