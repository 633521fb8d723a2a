"""The online-state store interface: apply guarded writes, answer batched reads.

Two implementations share one test suite (tests/unit/test_store_contract.py):
``MemoryStore`` (pure Python, for unit tests and offline replays) and
``RedisStore`` (Lua script: dedupe atomic with the writes it guards).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Sequence, Union

from streams.writes import Write

ReadOp = Literal["hgetall", "hmget", "zrevrange", "zrange", "zrangebelow", "zrangebetween", "zscore", "get", "zcard"]


@dataclass(frozen=True, slots=True)
class Read:
    """One read; a batch of reads is answered in a single round trip.

    op          key    args                      result
    hgetall     hash   ()                        dict[str, str]
    hmget       hash   (field, ...)              list[str | None]
    zrevrange   zset   (start, stop)             list[tuple[str, float]] highest first
    zrange      zset   (start, stop)             list[tuple[str, float]] lowest first
    zrangebelow zset   (max, count)              the lowest ``count`` members scoring < max, lowest first
    zrangebetween zset (min, max)                every member scoring in [min, max], lowest first
    zscore      zset   (member,)                 float | None
    get         str    ()                        bytes | None
    zcard       zset   ()                        int
    """

    op: ReadOp
    key: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Guarded:
    """Writes applied all-or-nothing, at most once per ``dedupe_id``.

    ``dedupe_id`` None means "always apply" (e.g. housekeeping).  ``stats_field``
    is incremented in the stats hash when the writes apply, ``duplicates`` when
    they are skipped.
    """

    dedupe_id: str | None
    writes: tuple[Write, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class GuardedBatch:
    """Many events' writes, merged (streams.merge), applied all-or-nothing.

    Applied only if none of ``dedupe_ids`` is marked yet, and then every id is
    marked.  If any is (another worker applied one of these events since the
    plan read the marks) nothing at all is written and the store reports a
    conflict: the caller re-plans the batch.  It must be the first group of an
    ``apply`` call.  Empty ``dedupe_ids`` means "always apply".
    """

    dedupe_ids: tuple[str, ...]
    writes: tuple[Write, ...] = field(default_factory=tuple)


Group = Union[Guarded, GuardedBatch]


class StoreUnavailable(ConnectionError):
    """The backing store cannot be reached; the caller should retry, never drop."""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    applied: int  # guarded groups + batched event ids applied
    duplicates: int
    conflict: bool = False  # a GuardedBatch found one of its ids marked: nothing was written


class PendingApply(Protocol):
    """An apply that has been sent to the store and may still be running."""

    async def result(self) -> ApplyResult:
        ...


@dataclass(frozen=True, slots=True)
class Applied:
    """A ``PendingApply`` that already completed (stores that apply synchronously)."""

    res: ApplyResult

    async def result(self) -> ApplyResult:
        return self.res


class Store(Protocol):
    namespace: str

    async def apply(
        self, batch: Sequence[Group], watermark: dict[int, int] | None = None
    ) -> ApplyResult:
        """Apply every guarded group atomically with its dedupe mark(s).

        ``watermark`` maps partition -> next offset; it is raised (never lowered)
        in the same atomic step, so a reader seeing offset N knows every record
        before N is applied.
        """
        ...

    async def apply_begin(
        self, batch: Sequence[Group], watermark: dict[int, int] | None = None
    ) -> PendingApply:
        """Like ``apply``, but returns once the store has the whole request, before it has run:
        the caller can work while the store applies, and must await ``result()`` before sending
        anything that depends on it."""
        ...

    def prepare_apply(self, batch: Sequence[Group], watermark: dict[int, int] | None = None) -> None:
        """Optionally do now the client-side work of the next ``apply`` / ``apply_begin`` of exactly
        these objects (e.g. while an earlier apply runs); a next apply of others ignores it."""
        ...

    async def read(self, reads: Sequence[Read]) -> list[Any]:
        ...

    async def digest(self) -> str:
        """Stable hash of every key in the namespace (floats rounded)."""
        ...
