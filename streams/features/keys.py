"""Every Redis key the online features use (logical keys; the store adds the namespace).

Entity ids sit inside a ``{hash tag}`` so one entity's keys share a Redis
Cluster slot.  Documented in docs/features.md.

| key                          | type | content                                                        | TTL |
|------------------------------|------|----------------------------------------------------------------|-----|
| ``item:{i}:w<win>:<period>`` | hash | ``<type>:<bucket>`` -> count                                   | 2 periods |
| ``item:{i}:agg``             | hash | per-type counts, impression, rating_*, dwell_*, first_seen     | none |
| ``item:{i}:decay``           | zset | ``pop:<hl>`` -> log2 forward-decayed weighted count            | none |
| ``item:{i}:cats``            | hash | ``list`` -> JSON list of categories                            | none |
| ``fcat:stats``               | hash | ``<type>`` and ``<type>:<cat>`` -> count (impression/click/implement) | none |
| ``user:{u}:w<win>:<period>`` | hash | ``<type>:<bucket>`` -> count                                   | 2 periods |
| ``user:{u}:agg``             | hash | per-type counts, rating_sum, rating_n                          | none |
| ``user:{u}:recent``          | zset | event id -> ts (epoch s), newest ``recent_keep``               | none |
| ``user:{u}:ui``              | hash | ``n:<item>`` count, ``s:<item>`` impressions, ``l:<item>`` packed last | user_item_ttl_s |
| ``user:{u}:cataff``          | zset | category -> log2 forward-decayed affinity, top ``category_keep`` | none |
| ``user:{u}:decay``           | zset | ``cat_total`` -> log2 forward-decayed total affinity           | none |
| ``labels:counts``            | hash | ``grade:<g>`` -> training rows emitted with that grade         | none |
"""

from __future__ import annotations

CATEGORY_STATS = "fcat:stats"
LABEL_COUNTS = "labels:counts"


def item_window(item_id: str, window: str, period: int) -> str:
    return f"item:{{{item_id}}}:w{window}:{period}"


def item_agg(item_id: str) -> str:
    return f"item:{{{item_id}}}:agg"


def item_decay(item_id: str) -> str:
    return f"item:{{{item_id}}}:decay"


def item_cats(item_id: str) -> str:
    return f"item:{{{item_id}}}:cats"


def user_window(user_id: str, window: str, period: int) -> str:
    return f"user:{{{user_id}}}:w{window}:{period}"


def user_agg(user_id: str) -> str:
    return f"user:{{{user_id}}}:agg"


def user_recent(user_id: str) -> str:
    return f"user:{{{user_id}}}:recent"


def user_items(user_id: str) -> str:
    return f"user:{{{user_id}}}:ui"


def user_cataff(user_id: str) -> str:
    return f"user:{{{user_id}}}:cataff"


def user_decay(user_id: str) -> str:
    return f"user:{{{user_id}}}:decay"
