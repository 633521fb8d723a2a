"""The two Redis round trips of a recommendation, in compact form.

``head``: the user's history, the trending and fresh heads and the stream clock
(what candidate generation needs).  ``live``: a few generic reads (the user-side
feature keys, and item-side keys of items not in the item-row cache), the
categories (``item:{i}:cats`` field ``list``, else ``item:{i}:meta`` field
``categories``) of the candidates passed as ``cat_items`` (those whose categories
are not cached with their item row), and the candidates' ``user:{u}:ui`` fields
(``s:``, ``n:``, ``l:``): the whole hash when it is small (at most 12 fields per
candidate), else three ``HMGET`` fields per candidate, keeping the present ones.
Everything read is read live, on every request; user-side state always is.

:class:`LuaLiveReader` answers each with ONE ``EVALSHA`` whose per-item parts go
in as packed strings and come back as packed strings (fields separated
by ``\\x1f``; item ids cannot hold control characters, stored category lists are
JSON): no JSON decoding of thousands of arguments inside Redis and no per-read
Python decoding (the JSON-in/JSON-out reader cost ~5 ms of Redis time and ~1.5 ms
of Python for 300 candidates).  :class:`GenericLiveReader` answers the same
questions with plain :class:`~streams.store.Read` lists, for any store (the
in-memory one in unit tests); both give identical answers (tested on real Redis).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol, Sequence

import orjson

from serving.batch_read import READS_LUA, REDIS_DOWN, BatchReader, decode_results, encode_reads
from streams import keys
from streams.features import keys as fkeys
from streams.store import Read, StoreUnavailable

ReadFn = Callable[[Sequence[Read]], Awaitable[list[Any]]]
SEP = "\x1f"


@dataclass(frozen=True, slots=True)
class Head:
    history: list[str]  # newest first
    trending: list[str]  # best first; read-only (a reader may hand out the same list while the head is unchanged)
    fresh: list[str]  # newest first
    clock: dict[str, str]


UI = tuple[str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Live:
    generic: list[Any]  # answers to the generic reads, in order
    cats: list[str | None]  # item:{i}:cats "list" per item of ``cat_items`` (None: absent)
    meta: list[str | None]  # item:{i}:meta "categories" per item of ``cat_items``, where cats is not a JSON list
    ui: dict[str, UI]  # item -> its user:{u}:ui fields (s, n, l), for the candidates that have any


class LiveReader(Protocol):
    async def head(self, user_id: str, trending: int, fresh: int) -> Head: ...

    async def live(self, reads: Sequence[Read], items: Sequence[str], user_id: str,
                   cat_items: Sequence[str] | None = None) -> Live: ...


def _template(fn: Callable[[str], str]) -> tuple[str, str]:
    pre, _, suf = fn("\x00").partition("\x00")
    if fn("item-x") != f"{pre}item-x{suf}":
        raise ValueError(f"{fn.__name__} is not a prefix/suffix key template")
    return pre, suf


HEAD_LUA = r"""
local ns = ARGV[1]
if string.sub(ns, 1, 1) == '@' then ns = redis.call('GET', 'streamrec:live') or string.sub(ns, 2) end
local out = {}
for n = 0, 2 do
  local got = redis.call('ZREVRANGE', ns .. ':' .. ARGV[2 + 2 * n], 0, tonumber(ARGV[3 + 2 * n]) - 1)
  out[n + 1] = table.concat(got, '\31')
end
out[4] = table.concat(redis.call('HGETALL', ns .. ':' .. ARGV[8]), '\31')
return out
"""

LIVE_LUA = READS_LUA + r"""
local ns = ARGV[1]
if string.sub(ns, 1, 1) == '@' then ns = redis.call('GET', 'streamrec:live') or string.sub(ns, 2) end
local cpre, csuf = ns .. ':' .. ARGV[4], ARGV[5] .. ''
local mpre, msuf = ns .. ':' .. ARGV[6], ARGV[7] .. ''
local ui = ns .. ':' .. ARGV[8]
local n = tonumber(ARGV[10])
local out = {}
for id in string.gmatch(ARGV[3], '[^\31]+') do
  local c = redis.call('HGET', cpre .. id .. csuf, 'list')
  local m = ''
  if not c or string.sub(c, 1, 1) ~= '[' then
    m = redis.call('HGET', mpre .. id .. msuf, 'categories') or '\1'
  end
  out[#out + 1] = (c or '\1') .. '\31' .. m
end
local pairs_ = {}
local hl = redis.call('HLEN', ui)
if hl > 0 and hl <= 12 * n then  -- small hash: all of it, the caller keeps the candidates' fields
  pairs_ = redis.call('HGETALL', ui)
elseif hl > 0 then
  for id in string.gmatch(ARGV[9], '[^\31]+') do
    local v = redis.call('HMGET', ui, 's:' .. id, 'n:' .. id, 'l:' .. id)
    if v[1] then pairs_[#pairs_ + 1] = 's:' .. id; pairs_[#pairs_ + 1] = v[1] end
    if v[2] then pairs_[#pairs_ + 1] = 'n:' .. id; pairs_[#pairs_ + 1] = v[2] end
    if v[3] then pairs_[#pairs_ + 1] = 'l:' .. id; pairs_[#pairs_ + 1] = v[3] end
  end
end
local generic = '[]'
if ARGV[2] ~= '[]' then
  generic = cjson.encode(run_reads(ns, cjson.decode(ARGV[2])))
end
return {generic, table.concat(pairs_, '\31'), table.concat(out, '\31')}
"""

_CATS, _META, _UI = _template(fkeys.item_cats), _template(keys.item_meta), fkeys.user_items


def _opt(v: bytes) -> str | None:
    return None if v == b"\x01" else v.decode()


class LuaLiveReader:
    """``head`` and ``live`` in one ``EVALSHA`` each (see the module docstring)."""

    def __init__(self, reader: BatchReader) -> None:
        self._ns = reader.ns_arg
        self._head = reader.client.register_script(HEAD_LUA)
        self._live = reader.client.register_script(LIVE_LUA)
        self._top: tuple[bytes, list[str]] = (b"", [])  # the last trending head: unchanged -> the same list

    async def head(self, user_id: str, trending: int, fresh: int) -> Head:
        args: list[str | int] = [self._ns, keys.user_history(user_id), keys.HISTORY_KEEP, keys.TRENDING, max(trending, 1),
                keys.FRESH, max(fresh, 1), keys.CLOCK]
        try:
            hist, top, new, clock = await self._head(args=args)
        except REDIS_DOWN as err:
            raise StoreUnavailable(f"Redis unavailable: {err}") from err
        c = clock.decode().split(SEP) if clock else []
        last = self._top
        if top != last[0] or len(last[1]) > trending:
            last = self._top = (top, _ids(top)[:trending])
        return Head(_ids(hist), last[1], _ids(new)[:fresh], dict(zip(c[0::2], c[1::2])))

    async def live(self, reads: Sequence[Read], items: Sequence[str], user_id: str,
                   cat_items: Sequence[str] | None = None) -> Live:
        cat_items = items if cat_items is None else cat_items
        packed_items, packed_cats = SEP.join(items), SEP.join(cat_items)
        if packed_items.count(SEP) != max(0, len(items) - 1) or packed_cats.count(SEP) != max(0, len(cat_items) - 1):
            bad = [i for i in list(items) + list(cat_items) if SEP in i]
            raise ValueError(f"item id {bad[0]!r} holds a control character")
        args: list[str | bytes | int] = [self._ns, encode_reads(reads) if reads else b"[]", packed_cats,
                                         *_CATS, *_META, _UI(user_id), packed_items, len(items)]
        try:
            generic, ui_packed, packed = await self._live(args=args)
        except REDIS_DOWN as err:
            raise StoreUnavailable(f"Redis unavailable: {err}") from err
        fields = packed.split(b"\x1f") if cat_items else []
        if len(fields) != 2 * len(cat_items):
            raise ValueError(f"live read: {len(fields)} fields for {len(cat_items)} items")
        values = orjson.loads(generic) if reads else []
        flat = ui_packed.decode().split(SEP) if ui_packed else []
        return Live(decode_results(reads, values), [_opt(v) for v in fields[0::2]],
                    [None if not v or v == b"\x01" else v.decode() for v in fields[1::2]],
                    ui_fields(dict(zip(flat[0::2], flat[1::2])), items))


_SLOT = {"s:": 0, "n:": 1, "l:": 2}


def ui_fields(stored: dict[str, str], items: Sequence[str]) -> dict[str, UI]:
    """The ``s:``/``n:``/``l:`` fields of ``items`` among ``stored`` (a ``user:{u}:ui`` hash, whole or in
    part), per item that has any of them."""
    want = set(items)
    got: dict[str, list[str | None]] = {}
    for f, v in stored.items():
        at = _SLOT.get(f[:2])
        if at is not None and f[2:] in want:
            got.setdefault(f[2:], [None, None, None])[at] = v
    return {i: (t[0], t[1], t[2]) for i, t in got.items()}


def _ids(packed: bytes) -> list[str]:
    return packed.decode().split(SEP) if packed else []


class GenericLiveReader:
    """The same answers from plain reads (any ``Store.read``); used by unit tests and as a reference."""

    def __init__(self, read: ReadFn) -> None:
        self._read = read

    async def head(self, user_id: str, trending: int, fresh: int) -> Head:
        hist, top, new, clock = await self._read([
            Read("zrevrange", keys.user_history(user_id), (0, keys.HISTORY_KEEP - 1)),
            Read("zrevrange", keys.TRENDING, (0, max(trending, 1) - 1)),
            Read("zrevrange", keys.FRESH, (0, max(fresh, 1) - 1)),
            Read("hgetall", keys.CLOCK),
        ])
        return Head([i for i, _ in hist], [i for i, _ in top][:trending], [i for i, _ in new][:fresh],
                    dict(clock or {}))

    async def live(self, reads: Sequence[Read], items: Sequence[str], user_id: str,
                   cat_items: Sequence[str] | None = None) -> Live:
        cat_items = items if cat_items is None else cat_items
        per_item = [r for i in cat_items for r in (Read("hgetall", fkeys.item_cats(i)),
                                                   Read("hmget", keys.item_meta(i), ("categories",)))]
        ui_read = Read("hgetall", fkeys.user_items(user_id))
        got = await self._read(list(reads) + per_item + [ui_read])
        n = len(reads)
        cats = [(h or {}).get("list") for h in got[n:n + 2 * len(cat_items):2]]
        metas = [(m or [None])[0] for m in got[n + 1:n + 2 * len(cat_items):2]]
        meta = [m if (c is None or not c.startswith("[")) else None for c, m in zip(cats, metas)]
        return Live(list(got[:n]), cats, meta, ui_fields(got[-1] or {}, items))
