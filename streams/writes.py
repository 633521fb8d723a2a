"""Descriptions of state changes.

Feature and state rules never talk to Redis: they put ``Write`` values into a
``WriteSink`` (a list, or the batch's ``streams.merge.Merger``) and only a store
adapter executes them.  Every operation here is commutative or
order-insensitive per key (increments, max-merges, log-sum-exp adds), so that
replaying the same events in another interleaving of partitions gives the same
state up to floating-point rounding (the state digest rounds floats).

Keys are *logical*: the store prefixes the namespace.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Protocol, Union

Op = Literal[
    "hincrby", "hincrbyfloat", "hset", "hsetnx", "hmax", "hmin", "zlogadd", "zmax", "ztrim", "set", "expire",
    "expirenew", "zrem", "zrembelow", "del", "vlogadd",
]


class Write(NamedTuple):
    """One state change (an immutable tuple; the worker builds one per *merged* write, ~20 per event,
    see ``WriteSink``, so construction cost matters).

    op            key   a (field/member)  b (value)
    hincrby       hash  field             integer delta
    hincrbyfloat  hash  field             float delta
    hset          hash  field             string value (last write wins)
    hsetnx        hash  field             string value (first write wins)
    hmax          hash  field             number: keep the larger
    hmin          hash  field             number: keep the smaller
    zlogadd       zset  member            log2 weight: score := log2(2^score + 2^b)
    zmax          zset  member            number: keep the larger score
    ztrim         zset  ""                keep only the N highest scores (N = b)
    set           str   ""                bytes or string value
    expire        any   ""                TTL in seconds
    expirenew     hash  ""                TTL in seconds, set only when this apply created a field of
                                          the hash (a fixed deadline per key, e.g. a window period:
                                          one EXPIRE per new field instead of one per write)
    zrem          zset  member            "" (remove the member)
    zrembelow     zset  ""                number: remove members scoring strictly below it
    del           any   ""                "" (delete the key)
    vlogadd       str   mean key          float64 LE bytes [L, v1..vd]: add 2^L * v to a
                                          log-scaled vector accumulator (see streams/embeddings.py)
                                          and store the float32 mean S/D at the key named by ``a``
    """

    op: Op
    key: str
    a: str
    b: Union[int, float, str, bytes]


_new = tuple.__new__  # Write(...) goes through a generated Python __new__; this is ~3x cheaper


def hincrby(key: str, field: str, by: int = 1) -> Write:
    return _new(Write, ("hincrby", key, field, int(by)))


def hincrbyfloat(key: str, field: str, by: float) -> Write:
    return _new(Write, ("hincrbyfloat", key, field, float(by)))


def hset(key: str, field: str, value: str) -> Write:
    return _new(Write, ("hset", key, field, value))


def hsetnx(key: str, field: str, value: str) -> Write:
    return _new(Write, ("hsetnx", key, field, value))


def hmax(key: str, field: str, value: float) -> Write:
    return _new(Write, ("hmax", key, field, value))


def hmin(key: str, field: str, value: float) -> Write:
    return _new(Write, ("hmin", key, field, value))


def zlogadd(key: str, member: str, log2_weight: float) -> Write:
    return _new(Write, ("zlogadd", key, member, float(log2_weight)))


def zmax(key: str, member: str, score: float) -> Write:
    return _new(Write, ("zmax", key, member, float(score)))


def ztrim(key: str, keep: int) -> Write:
    return _new(Write, ("ztrim", key, "", int(keep)))


def put(key: str, value: bytes | str) -> Write:
    return _new(Write, ("set", key, "", value))


def expire(key: str, seconds: int) -> Write:
    return _new(Write, ("expire", key, "", int(seconds)))


def expire_new(key: str, seconds: int) -> Write:
    return _new(Write, ("expirenew", key, "", int(seconds)))


def zrem(key: str, member: str) -> Write:
    return _new(Write, ("zrem", key, member, ""))


def zrembelow(key: str, score: float) -> Write:
    return _new(Write, ("zrembelow", key, "", float(score)))


def delete(key: str) -> Write:
    return _new(Write, ("del", key, "", ""))


def vlogadd(acc_key: str, mean_key: str, payload: bytes) -> Write:
    """``payload`` = float64 little-endian [log2 weight, v_1, ..., v_d] (``embeddings.contribution``)."""
    return _new(Write, ("vlogadd", acc_key, mean_key, payload))


class WriteSink(Protocol):
    """Where rules put their writes: one method per op, same arguments as the constructors above.

    ``WriteList`` keeps every write (one event's list, as ``Family.writes`` returns it);
    ``streams.merge.Merger`` folds them into the batch's merged writes as they come, so the
    worker never builds the ~34 per-event tuples that merging would drop again."""

    def hincrby(self, key: str, field: str, by: int = 1) -> None: ...
    def hincrbyfloat(self, key: str, field: str, by: float) -> None: ...
    def hset(self, key: str, field: str, value: str) -> None: ...
    def hsetnx(self, key: str, field: str, value: str) -> None: ...
    def hmax(self, key: str, field: str, value: float) -> None: ...
    def hmin(self, key: str, field: str, value: float) -> None: ...
    def zlogadd(self, key: str, member: str, log2_weight: float) -> None: ...
    def zmax(self, key: str, member: str, score: float) -> None: ...
    def ztrim(self, key: str, keep: int) -> None: ...
    def put(self, key: str, value: bytes | str) -> None: ...
    def expire(self, key: str, seconds: int) -> None: ...
    def hincrby_expire_new(self, key: str, field: str, by: int, seconds: int) -> None:
        """``hincrby(key, field, by)`` then ``expire_new(key, seconds)``."""
    def add(self, w: Write) -> None: ...


class WriteList:
    """A ``WriteSink`` that keeps every write, in order (``writes``)."""

    __slots__ = ("writes",)

    def __init__(self) -> None:
        self.writes: list[Write] = []

    def hincrby(self, key: str, field: str, by: int = 1) -> None:
        self.writes.append(hincrby(key, field, by))

    def hincrbyfloat(self, key: str, field: str, by: float) -> None:
        self.writes.append(hincrbyfloat(key, field, by))

    def hset(self, key: str, field: str, value: str) -> None:
        self.writes.append(hset(key, field, value))

    def hsetnx(self, key: str, field: str, value: str) -> None:
        self.writes.append(hsetnx(key, field, value))

    def hmax(self, key: str, field: str, value: float) -> None:
        self.writes.append(hmax(key, field, value))

    def hmin(self, key: str, field: str, value: float) -> None:
        self.writes.append(hmin(key, field, value))

    def zlogadd(self, key: str, member: str, log2_weight: float) -> None:
        self.writes.append(zlogadd(key, member, log2_weight))

    def zmax(self, key: str, member: str, score: float) -> None:
        self.writes.append(zmax(key, member, score))

    def ztrim(self, key: str, keep: int) -> None:
        self.writes.append(ztrim(key, keep))

    def put(self, key: str, value: bytes | str) -> None:
        self.writes.append(put(key, value))

    def expire(self, key: str, seconds: int) -> None:
        self.writes.append(expire(key, seconds))

    def hincrby_expire_new(self, key: str, field: str, by: int, seconds: int) -> None:
        self.writes += (hincrby(key, field, by), expire_new(key, seconds))

    def add(self, w: Write) -> None:
        self.writes.append(w)
