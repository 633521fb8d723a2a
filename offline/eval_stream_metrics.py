"""The streaming-evaluation protocol as pure functions: the plan, the queries, the scores.

``streamrec eval stream`` (``streamrec/eval_stream.py``) replays a rating stream
through the real services; everything here is numpy and the standard library, so
it is unit-tested without a broker or Redis.

* :func:`plan` cuts the stream (``n`` events in time order): the first
  ``train_fraction`` trains the initial model; the rest is walked in chunks of at
  most ``chunk`` events that never cross a retrain point (every ``retrain_every``
  of the stream).
* :func:`chunk_queries` turns the positives (``rating >= min_rating``) of one chunk
  into queries.  Each query excludes every item its user rated *earlier in the
  stream* (MovieLens users never re-rate an item), the same set for every system.
* :class:`HitRate` scores single-target top-k lists: HR@k = share of queries whose
  target is in the list; NDCG@k = ``1 / log2(rank + 2)`` for a hit at 0-based
  ``rank`` (one relevant item, so the ideal DCG is 1), else 0.
* :func:`top_k_excluding` and :class:`FactorRecommender` are the baselines' rankers.

>>> s = HitRate(10)
>>> s.add(["a", "b", "c"], "b"); s.add(["a"], "z")
>>> s.as_dict()
{'hr@10': 0.5, 'ndcg@10': 0.31546487678572877, 'n': 2}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Protocol, Sequence

import numpy as np
import numpy.typing as npt


class RatingLike(Protocol):
    @property
    def user_id(self) -> str: ...
    @property
    def item_id(self) -> str: ...
    @property
    def rating(self) -> int: ...


@dataclass(frozen=True)
class Plan:
    n: int
    train_end: int  # events [0, train_end) train the initial model
    retrains: tuple[int, ...]  # before the event at each of these positions, the models are retrained
    chunks: tuple[tuple[int, int], ...]  # [lo, hi) ranges covering [train_end, n) in order


def plan(n: int, train_fraction: float = 0.5, retrain_every: float = 0.1, chunk: int = 250) -> Plan:
    """Cut ``n`` events into the training prefix, retrain points and evaluation chunks.

    >>> p = plan(100, 0.5, 0.2, 15)
    >>> p.train_end, p.retrains
    (50, (70, 90))
    >>> p.chunks
    ((50, 65), (65, 70), (70, 85), (85, 90), (90, 100))
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    if retrain_every <= 0.0 or chunk < 1:
        raise ValueError("retrain_every must be above 0 and chunk at least 1")
    train_end = int(round(n * train_fraction))
    steps = int(math.floor((1.0 - train_fraction) / retrain_every + 1e-9))
    points = sorted({int(round(n * (train_fraction + j * retrain_every))) for j in range(1, steps + 1)})
    retrains = tuple(p for p in points if train_end < p < n)
    bounds = [train_end, *retrains, n]
    chunks: list[tuple[int, int]] = []
    for a, b in zip(bounds, bounds[1:]):
        chunks += [(lo, min(lo + chunk, b)) for lo in range(a, b, chunk)]
    return Plan(n, train_end, retrains, tuple(chunks))


@dataclass(frozen=True)
class Query:
    position: int  # index of the target event in the stream
    user_id: str
    item_id: str  # the item the user actually chose next
    exclude: frozenset[str]  # items the user rated before it


def chunk_queries(events: Sequence[RatingLike], lo: int, hi: int, seen: dict[str, set[str]],
                  min_rating: int = 4) -> list[Query]:
    """Queries for the positives among ``events[lo:hi]``; updates ``seen`` (user -> rated items) in stream order.

    >>> from offline.movielens import Rating
    >>> ev = [Rating("u", "a", 5, 0), Rating("u", "b", 2, 1), Rating("u", "c", 4, 2)]
    >>> seen: dict[str, set[str]] = {}
    >>> [(q.item_id, sorted(q.exclude)) for q in chunk_queries(ev, 0, 3, seen)]
    [('a', []), ('c', ['a', 'b'])]
    """
    out: list[Query] = []
    for pos in range(lo, hi):
        e = events[pos]
        had = seen.setdefault(e.user_id, set())
        if e.rating >= min_rating:
            out.append(Query(pos, e.user_id, e.item_id, frozenset(had)))
        had.add(e.item_id)
    return out


def mark_seen(events: Iterable[RatingLike], seen: dict[str, set[str]]) -> None:
    for e in events:
        seen.setdefault(e.user_id, set()).add(e.item_id)


@dataclass
class HitRate:
    k: int = 10
    n: int = 0
    hits: int = 0
    dcg: float = 0.0
    per_query: list[float] = field(default_factory=list, repr=False)

    def add(self, ranked: Sequence[str], target: str) -> None:
        top = list(ranked[: self.k])
        gain = 1.0 / math.log2(top.index(target) + 2) if target in top else 0.0
        self.n += 1
        self.hits += gain > 0.0
        self.dcg += gain
        self.per_query.append(gain)

    def as_dict(self) -> dict[str, float | int]:
        return {f"hr@{self.k}": self.hits / self.n if self.n else 0.0,
                f"ndcg@{self.k}": self.dcg / self.n if self.n else 0.0, "n": self.n}


def top_k_excluding(ranked: Iterable[str], exclude: frozenset[str] | set[str], k: int) -> list[str]:
    """The first ``k`` of a best-first list that are not excluded.

    >>> top_k_excluding(["a", "b", "c", "d"], {"b"}, 2)
    ['a', 'c']
    """
    out: list[str] = []
    for i in ranked:
        if len(out) >= k:
            break
        if i not in exclude:
            out.append(i)
    return out


def popularity(events: Iterable[RatingLike], min_rating: int) -> list[str]:
    """Items by number of ratings >= ``min_rating``, most first (ties by item id)."""
    counts: dict[str, int] = {}
    for e in events:
        if e.rating >= min_rating:
            counts[e.item_id] = counts.get(e.item_id, 0) + 1
    return sorted(counts, key=lambda i: (-counts[i], i))


@dataclass(frozen=True, eq=False)
class FactorRecommender:
    """A frozen factor model: score(u, i) = U[u] . V[i] over its catalogue; users it never trained on
    (no positive in its training data) get its training-time popularity list instead."""

    user_ids: Mapping[str, int]
    item_ids: Sequence[str]
    users: npt.NDArray[np.float32]  # (n_users, d)
    items: npt.NDArray[np.float32]  # (n_items, d)
    trained_users: frozenset[str]
    fallback: Sequence[str]  # best first

    def recommend(self, user_id: str, exclude: frozenset[str] | set[str], k: int) -> list[str]:
        row = self.user_ids.get(user_id)
        if row is None or user_id not in self.trained_users:
            return top_k_excluding(self.fallback, exclude, k)
        scores = self.items @ self.users[row]
        depth = min(len(scores), k + len(exclude))
        top = np.argpartition(-scores, depth - 1)[:depth] if depth < len(scores) else np.arange(len(scores))
        order = top[np.lexsort((top, -scores[top]))]
        return top_k_excluding((self.item_ids[j] for j in order), exclude, k)
