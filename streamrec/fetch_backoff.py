"""Pause aiokafka consumers briefly after an empty fetch.

Kafka holds a fetch for up to ``fetch.max.wait.ms`` when there is nothing to
read.  Some Kafka-protocol brokers (noida-db, used for development and tests)
answer at once with no records instead, and aiokafka's fetcher then sends the
next fetch immediately: an idle consumer made ~3,000 fetches/s and used ~60 % of
a core, and inside the worker that thread competes with the agent for the GIL.

After a fetch that brought nothing new, the fetch task sleeps ``backoff_ms``
before it completes; other partitions' fetches and the consumer are not blocked,
and new data waits at most ``backoff_ms`` longer.  With a broker that honours
the wait the pause almost never triggers.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from aiokafka.consumer import fetcher as _fetcher

_ORIGINAL: Callable[..., Awaitable[bool]] = _fetcher.Fetcher._proc_fetch_request
_state = {"backoff_s": 0.0}


async def _proc_fetch_request(self: Any, assignment: Any, node_id: int, request: Any) -> bool:
    got = await _ORIGINAL(self, assignment, node_id, request)
    if not got and _state["backoff_s"] > 0:
        try:
            await asyncio.sleep(_state["backoff_s"])
        except asyncio.CancelledError:
            pass  # the fetcher is closing: it cancels and awaits its fetch tasks, expecting them to finish
    return got


def install(backoff_ms: int) -> None:
    """Process-wide; call before consumers start.  ``0`` restores aiokafka's behaviour."""
    _state["backoff_s"] = backoff_ms / 1000.0
    _fetcher.Fetcher._proc_fetch_request = _proc_fetch_request if backoff_ms > 0 else _ORIGINAL  # type: ignore[method-assign]


def installed_backoff_ms() -> float:
    return _state["backoff_s"] * 1000.0
