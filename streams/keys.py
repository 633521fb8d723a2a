"""Every Redis key streamrec uses is built here, and only here.

Keys are logical (no namespace); ``namespaced`` adds the live or replay
namespace.  Per-entity keys put the entity id inside a ``{hash tag}`` so that
all keys of one user (or one item) land on the same Redis Cluster slot.

| key                         | type   | fields / members                         | TTL            |
|-----------------------------|--------|------------------------------------------|----------------|
| ``item:{i}:counts``         | hash   | interaction type -> count                | none           |
| ``item:{i}:meta``           | hash   | categories (json list), attrs (json), created_ts | none   |
| ``user:{u}:meta``           | hash   | attrs (json)                             | none           |
| ``user:{u}:history``        | zset   | item id -> last interaction ts (epoch s), newest 500 | none |
| ``trending``                | zset   | item id -> log2 forward-decayed weight   | none           |
| ``fresh``                   | zset   | item id -> created/first-seen ts, newest 1000 | none      |
| ``stats``                   | hash   | applied:<type>, duplicates, dead_letters | none           |
| ``dedupe:{event_id}``       | string | "1" (atomic with the writes it guards)   | dedupe_ttl_s   |
| ``watermark``               | hash   | partition -> highest applied offset + 1  | none           |
"""

from __future__ import annotations

TRENDING = "trending"
FRESH = "fresh"
STATS = "stats"
WATERMARK = "watermark"
LIVE_POINTER = "streamrec:live"  # un-namespaced: names the live namespace

HISTORY_KEEP = 500
FRESH_KEEP = 1000


def item_counts(item_id: str) -> str:
    return f"item:{{{item_id}}}:counts"


def item_meta(item_id: str) -> str:
    return f"item:{{{item_id}}}:meta"


def user_meta(user_id: str) -> str:
    return f"user:{{{user_id}}}:meta"


def user_history(user_id: str) -> str:
    return f"user:{{{user_id}}}:history"


def dedupe(event_id: str) -> str:
    return f"dedupe:{event_id}"


def namespaced(namespace: str, key: str) -> str:
    return f"{namespace}:{key}"
