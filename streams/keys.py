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
| ``stats``                   | hash   | applied:<type>, duplicates, dead_letters, lost_to_retention, impressions_lost_to_retention | none |
| ``dedupe:{event_id}``       | string | "1" (atomic with the writes it guards)   | dedupe_ttl_s   |
| ``watermark``               | hash   | partition -> highest applied (or counted lost) offset + 1 | none |
| ``impressions_watermark``   | hash   | the same, for the impressions topic      | none           |
| ``lbl:wm``                  | hash   | ``p<n>``/``i<n>`` -> max event time seen per events/impressions partition | none |
| ``lbl:open``                | zset   | ``user\x1frequest_id`` -> closes_at + lateness (epoch s) | none |
| ``lbl:imp:{u}:{req}``       | string | the impression event (JSON), until its window closes | none |
| ``lbl:ix:{u}``              | zset   | JSON [event_id, type, item, dwell_ms or rating] -> ts; kept from label_flow.trim_bound on | none |
| ``vacc:{ver}:user:{u}``     | string | float64 LE [s, D, S_1..S_d] log-scaled decayed vector sum | none |
| ``vec:{ver}:user:{u}``      | string | float32 LE user vector (S/D)             | none           |
| ``vacc:{ver}:item:{i}``     | string | as above, for an item without a trained vector (fold-in) | none |
| ``vec:{ver}:item:{i}``      | string | float32 LE folded-in item vector         | none           |
| ``metrics:{worker}``        | hash   | process-local worker metrics (river dwell sketch) | none  |

Global (never namespaced; written by the offline trainer, see docs/streams.md):

| ``streamrec:live``              | string | the live namespace                                  |
| ``streamrec:vec:meta``          | hash   | ``version``, ``dim`` of the published item factors  |
| ``streamrec:vec:{ver}:item:{i}``| string | float32 LE trained item vector                      |
"""

from __future__ import annotations

TRENDING = "trending"
FRESH = "fresh"
STATS = "stats"
WATERMARK = "watermark"
IMPRESSIONS_WATERMARK = "impressions_watermark"
CLOCK = "clock"  # event-time clock of the stream: newest event time applied
LIVE_POINTER = "streamrec:live"  # un-namespaced: names the live namespace

GLOBAL_PREFIX = "streamrec:"  # logical keys starting with this are shared by every namespace
VEC_META = "streamrec:vec:meta"
LABEL_WM = "lbl:wm"
LABEL_OPEN = "lbl:open"

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


def label_impression(user_id: str, request_id: str) -> str:
    return f"lbl:imp:{{{user_id}}}:{request_id}"


def label_buffer(user_id: str) -> str:
    return f"lbl:ix:{{{user_id}}}"


def trained_item_vector(version: str, item_id: str) -> str:
    """Published by the offline trainer: float32 LE bytes of dimension ``dim``."""
    return f"{GLOBAL_PREFIX}vec:{version}:item:{item_id}"


def user_vector(version: str, user_id: str) -> str:
    return f"vec:{version}:user:{{{user_id}}}"


def user_vector_acc(version: str, user_id: str) -> str:
    return f"vacc:{version}:user:{{{user_id}}}"


def item_vector(version: str, item_id: str) -> str:
    """Folded-in vector of an item the trained model does not know."""
    return f"vec:{version}:item:{{{item_id}}}"


def item_vector_acc(version: str, item_id: str) -> str:
    return f"vacc:{version}:item:{{{item_id}}}"


def worker_metrics(worker: str) -> str:
    return f"metrics:{worker}"


def namespaced(namespace: str, key: str) -> str:
    if key.startswith(GLOBAL_PREFIX):
        return key
    return f"{namespace}:{key}"
