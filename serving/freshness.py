"""Read-your-writes: wait (bounded) until the worker has applied a POST /events watermark token.

The token is "partition:offset,..." (serving/watermark.py): the next offsets an
ingest call's events got in the events topic.  The worker raises the
``watermark`` hash (partition -> next applied offset) in the same atomic Lua
call that applies a batch, so once every partition has reached the token, every
event of that call is visible in the online state.

    reached, lag = await wait_for_watermark(state.store, token, timeout_s=0.2)

``lag`` maps partition -> offsets still missing ({} when reached), so a route
can answer anyway and say how stale it is.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol, Sequence

from serving.watermark import decode_token
from streams import keys
from streams.store import Read


class Reader(Protocol):
    async def read(self, reads: Sequence[Read]) -> list[Any]: ...


def lag_of(applied: dict[str, str], wanted: dict[int, int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for p, off in wanted.items():
        try:
            have = int(applied.get(str(p), 0))
        except ValueError:
            have = 0
        if have < off:
            out[p] = off - have
    return out


async def wait_for_watermark(store: Reader, token: str, timeout_s: float,
                             poll_s: float = 0.002, max_poll_s: float = 0.02) -> tuple[bool, dict[int, int]]:
    """(True, {}) once the worker has applied everything up to ``token``; else, after
    ``timeout_s``, (False, partition -> offsets behind).  Raises ValueError on a bad token
    (serving should answer 422 with its message) and StoreUnavailable if Redis is down."""
    wanted = decode_token(token)
    deadline = time.monotonic() + max(0.0, timeout_s)
    delay = poll_s
    while True:
        (applied,) = await store.read([Read("hgetall", keys.WATERMARK)])
        lag = lag_of(applied or {}, wanted)
        if not lag:
            return True, {}
        left = deadline - time.monotonic()
        if left <= 0:
            return False, lag
        await asyncio.sleep(min(delay, left))
        delay = min(delay * 2, max_poll_s)
