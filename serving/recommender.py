"""Trending-minus-seen recommendation (the skeleton ranker); no HTTP, no Redis client here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from streams import keys
from streams.online_state import decayed
from streams.store import Read, Store

MODEL_VERSION = "trending-v0"


@dataclass(frozen=True)
class Scored:
    item_id: str
    score: float
    source: str


async def trending_for_user(
    store: Store,
    user_id: str,
    k: int,
    exclude: Sequence[str],
    now_s: float,
    half_life_s: float,
) -> list[Scored]:
    """Top-k trending items the user has not interacted with and the client did not exclude.

    One round trip fetches the user's history and enough trending items to fill
    k after filtering (history is bounded by ``keys.HISTORY_KEEP``).
    """
    depth = k + len(exclude) + keys.HISTORY_KEEP
    hist, top = await store.read(
        [Read("zrevrange", keys.user_history(user_id), (0, -1)), Read("zrevrange", keys.TRENDING, (0, depth - 1))]
    )
    seen = {m for m, _ in hist} | set(exclude)
    out: list[Scored] = []
    for item, score in top:
        if item in seen:
            continue
        out.append(Scored(item, decayed(score, now_s, half_life_s), "trending"))
        if len(out) >= k:
            break
    return out
