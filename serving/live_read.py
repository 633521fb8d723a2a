"""The two Redis round trips of a recommendation, in compact form.

``head``: the user's history, the trending and fresh heads and the stream clock
(what candidate generation needs).  ``live``: a few generic reads (the user-side
feature keys, and item-side keys of items not in the item-row cache) plus, for
every candidate, its categories (``item:{i}:cats`` field ``list``, else
``item:{i}:meta`` field ``categories``) and its three ``user:{u}:ui`` fields
(``s:``, ``n:``, ``l:``).  Everything read is read live, on every request.

:class:`LuaLiveReader` answers each with ONE ``EVALSHA`` whose per-item part goes
in as one packed string and comes back as one packed string (fields separated
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
    trending: list[str]  # best first
    fresh: list[str]  # newest first
    clock: dict[str, str]


@dataclass(frozen=True, slots=True)
class Live:
    generic: list[Any]  # answers to the generic reads, in order
    cats: list[str | None]  # item:{i}:cats "list" per item (None: absent)
    meta: list[str | None]  # item:{i}:meta "categories" per item, where cats is not a JSON list (else None)
    ui: list[str | None] | None  # s, n, l per item (3 per item) from user:{u}:ui; None: the hash is empty


class LiveReader(Protocol):
    async def head(self, user_id: str, trending: int, fresh: int) -> Head: ...

    async def live(self, reads: Sequence[Read], items: Sequence[str], user_id: str) -> Live: ...


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
local ids = {}
for id in string.gmatch(ARGV[3], '[^\31]+') do ids[#ids + 1] = id end
local uih = {}
local hl = redis.call('HLEN', ui)
local has_ui = hl > 0
local whole = hl <= 12 * #ids  -- small hash: one HGETALL; else three HMGET fields per item
if has_ui and whole then
  local flat = redis.call('HGETALL', ui)
  for j = 1, #flat, 2 do uih[flat[j]] = flat[j + 1] end
end
local out = {}
for j = 1, #ids do
  local id = ids[j]
  local c = redis.call('HGET', cpre .. id .. csuf, 'list')
  local m = ''
  if not c or string.sub(c, 1, 1) ~= '[' then
    m = redis.call('HGET', mpre .. id .. msuf, 'categories') or '\1'
  end
  if has_ui then
    local s, n, l
    if whole then s, n, l = uih['s:' .. id], uih['n:' .. id], uih['l:' .. id]
    else
      local v = redis.call('HMGET', ui, 's:' .. id, 'n:' .. id, 'l:' .. id)
      s, n, l = v[1], v[2], v[3]
    end
    out[j] = (c or '\1') .. '\31' .. m .. '\31' .. (s or '\1') .. '\31' .. (n or '\1') .. '\31' .. (l or '\1')
  else
    out[j] = (c or '\1') .. '\31' .. m
  end
end
local generic = '[]'
if ARGV[2] ~= '[]' then
  generic = cjson.encode(run_reads(ns, cjson.decode(ARGV[2])))
end
return {generic, has_ui and 1 or 0, table.concat(out, '\31')}
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

    async def head(self, user_id: str, trending: int, fresh: int) -> Head:
        args: list[str | int] = [self._ns, keys.user_history(user_id), keys.HISTORY_KEEP, keys.TRENDING, max(trending, 1),
                keys.FRESH, max(fresh, 1), keys.CLOCK]
        try:
            hist, top, new, clock = await self._head(args=args)
        except REDIS_DOWN as err:
            raise StoreUnavailable(f"Redis unavailable: {err}") from err
        c = clock.decode().split(SEP) if clock else []
        return Head(_ids(hist), _ids(top)[:trending], _ids(new)[:fresh], dict(zip(c[0::2], c[1::2])))

    async def live(self, reads: Sequence[Read], items: Sequence[str], user_id: str) -> Live:
        for i in items:
            if SEP in i:
                raise ValueError(f"item id {i!r} holds a control character")
        args: list[str | bytes] = [self._ns, encode_reads(reads) if reads else b"[]", SEP.join(items),
                                   *_CATS, *_META, _UI(user_id)]
        try:
            generic, has_ui, packed = await self._live(args=args)
        except REDIS_DOWN as err:
            raise StoreUnavailable(f"Redis unavailable: {err}") from err
        fields = packed.split(b"\x1f") if items else []
        step = 5 if has_ui else 2
        if len(fields) != step * len(items):
            raise ValueError(f"live read: {len(fields)} fields for {len(items)} items")
        values = orjson.loads(generic) if reads else []
        ui = None
        if has_ui:
            ui = [None if v == b"\x01" else v.decode() for k in range(len(items)) for v in fields[5 * k + 2:5 * k + 5]]
        return Live(decode_results(reads, values), [_opt(v) for v in fields[0::step]],
                    [None if not v or v == b"\x01" else v.decode() for v in fields[1::step]], ui)


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

    async def live(self, reads: Sequence[Read], items: Sequence[str], user_id: str) -> Live:
        per_item = [r for i in items for r in (Read("hgetall", fkeys.item_cats(i)),
                                               Read("hmget", keys.item_meta(i), ("categories",)))]
        ui_read = Read("hgetall", fkeys.user_items(user_id))
        got = await self._read(list(reads) + per_item + [ui_read])
        n = len(reads)
        cats = [(h or {}).get("list") for h in got[n:n + 2 * len(items):2]]
        metas = [(m or [None])[0] for m in got[n + 1:n + 2 * len(items):2]]
        meta = [m if (c is None or not c.startswith("[")) else None for c, m in zip(cats, metas)]
        uih: dict[str, str] = got[-1] or {}
        ui = [uih.get(f"{p}:{i}") for i in items for p in "snl"] if uih else None
        return Live(list(got[:n]), cats, meta, ui)
