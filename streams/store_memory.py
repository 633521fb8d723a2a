"""In-memory ``Store``: the reference semantics of every write op (see streams/writes.py)."""

from __future__ import annotations

import math
from typing import Any, Sequence, cast

from streams import keys
from streams.embeddings import logadd_state
from streams.digest import Value, digest_items
from streams.store import Applied, ApplyResult, Group, GuardedBatch, Read
from streams.writes import Write


def _log2add(a: float, b: float) -> float:
    hi, lo = (a, b) if a >= b else (b, a)
    return hi + math.log2(1.0 + 2.0 ** (lo - hi))


class MemoryStore:
    def __init__(self, namespace: str = "mem") -> None:
        self.namespace = namespace
        self.hashes: dict[str, dict[str, str]] = {}
        self.zsets: dict[str, dict[str, float]] = {}
        self.strings: dict[str, bytes] = {}

    # -- writes -------------------------------------------------------------
    def _apply_one(self, w: Write) -> None:
        op = w.op
        if op in ("hincrby", "hincrbyfloat", "hset", "hsetnx", "hmax", "hmin"):
            h = self.hashes.setdefault(w.key, {})
            cur = h.get(w.a)
            if op == "hincrby":
                h[w.a] = str(int(cur or 0) + int(w.b))
            elif op == "hincrbyfloat":
                h[w.a] = repr(float(cur or 0.0) + float(w.b))
            elif op == "hset":
                h[w.a] = _s(w.b)
            elif op == "hsetnx":
                if cur is None:
                    h[w.a] = _s(w.b)
            elif op == "hmax":
                if cur is None or float(w.b) > float(cur):
                    h[w.a] = _s(w.b)
            else:  # hmin
                if cur is None or float(w.b) < float(cur):
                    h[w.a] = _s(w.b)
        elif op in ("zlogadd", "zmax", "ztrim"):
            z = self.zsets.setdefault(w.key, {})
            if op == "zlogadd":
                old = z.get(w.a)
                z[w.a] = float(w.b) if old is None else _log2add(old, float(w.b))
            elif op == "zmax":
                old = z.get(w.a)
                if old is None or float(w.b) > old:
                    z[w.a] = float(w.b)
            else:
                keep = int(w.b)
                if len(z) > keep:
                    ranked = sorted(z.items(), key=lambda kv: (kv[1], kv[0]))
                    for m, _ in ranked[: len(z) - keep]:
                        del z[m]
        elif op in ("zrem", "zrembelow"):
            z = self.zsets.setdefault(w.key, {})
            if op == "zrem":
                z.pop(w.a, None)
            else:
                for m in [m for m, sc in z.items() if sc < float(w.b)]:
                    del z[m]
        elif op == "set":
            self.strings[w.key] = w.b if isinstance(w.b, bytes) else str(w.b).encode()
        elif op == "del":
            self.hashes.pop(w.key, None)
            self.zsets.pop(w.key, None)
            self.strings.pop(w.key, None)
        elif op == "vlogadd":
            acc, mean = logadd_state(self.strings.get(w.key), cast(bytes, w.b))  # vlogadd's payload is bytes
            self.strings[w.key] = acc
            self.strings[w.a] = mean
        elif op == "expire" or op == "expirenew":
            pass  # TTLs are wall-clock housekeeping; the memory store keeps everything
        else:  # pragma: no cover - Write.op is a closed Literal
            raise ValueError(f"unknown write op {op!r}")

    def apply_writes(self, writes: Sequence[Write]) -> None:
        """Apply writes unguarded, in order (streams.overlay replays an apply with this)."""
        for w in writes:
            self._apply_one(w)

    async def apply(
        self, batch: Sequence[Group], watermark: dict[int, int] | None = None
    ) -> ApplyResult:
        applied = dup = 0
        stats = self.hashes.setdefault(keys.STATS, {})
        for n, g in enumerate(batch):
            if isinstance(g, GuardedBatch):
                if n:
                    raise ValueError("a GuardedBatch must be the first group of an apply")
                marks = [keys.dedupe(i) for i in g.dedupe_ids]
                if any(m in self.strings for m in marks):
                    return ApplyResult(0, 0, conflict=True)
                for m in marks:
                    self.strings[m] = b"1"
                for w in g.writes:
                    self._apply_one(w)
                applied += len(marks)
                continue
            if g.dedupe_id is not None:
                dk = keys.dedupe(g.dedupe_id)
                if dk in self.strings:
                    dup += 1
                    stats["duplicates"] = str(int(stats.get("duplicates", 0)) + 1)
                    continue
                self.strings[dk] = b"1"
            for w in g.writes:
                self._apply_one(w)
            applied += 1
        if watermark:
            wm = self.hashes.setdefault(keys.WATERMARK, {})
            for p, off in watermark.items():
                if int(wm.get(str(p), -1)) < off:
                    wm[str(p)] = str(off)
        return ApplyResult(applied, dup)

    async def apply_begin(
        self, batch: Sequence[Group], watermark: dict[int, int] | None = None
    ) -> Applied:
        return Applied(await self.apply(batch, watermark))

    def prepare_apply(self, batch: Sequence[Group], watermark: dict[int, int] | None = None) -> None:
        return None  # nothing to pack

    # -- reads --------------------------------------------------------------
    def _read_one(self, r: Read) -> Any:
        if r.op == "hgetall":
            return dict(self.hashes.get(r.key, {}))
        if r.op == "hmget":
            h = self.hashes.get(r.key, {})
            return [h.get(f) for f in r.args]
        if r.op == "zrevrange":
            z = self.zsets.get(r.key, {})
            ranked = sorted(z.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
            start, stop = int(r.args[0]), int(r.args[1])
            end = None if stop == -1 else stop + 1
            return [(m, s) for m, s in ranked[start:end]]
        if r.op == "zrange":
            z = self.zsets.get(r.key, {})
            ranked = sorted(z.items(), key=lambda kv: (kv[1], kv[0]))
            start, stop = int(r.args[0]), int(r.args[1])
            end = None if stop == -1 else stop + 1
            return [(m, s) for m, s in ranked[start:end]]
        if r.op == "zrangebelow":
            z = self.zsets.get(r.key, {})
            below = sorted(((m, s) for m, s in z.items() if s < float(r.args[0])), key=lambda kv: (kv[1], kv[0]))
            return below[: int(r.args[1])]
        if r.op == "zrangebetween":
            z = self.zsets.get(r.key, {})
            lo, hi = float(r.args[0]), float(r.args[1])
            return sorted(((m, s) for m, s in z.items() if lo <= s <= hi), key=lambda kv: (kv[1], kv[0]))
        if r.op == "zscore":
            return self.zsets.get(r.key, {}).get(str(r.args[0]))
        if r.op == "get":
            return self.strings.get(r.key)
        if r.op == "zcard":
            return len(self.zsets.get(r.key, {}))
        raise ValueError(f"unknown read op {r.op!r}")

    def read_one(self, r: Read) -> Any:
        return self._read_one(r)

    async def read(self, reads: Sequence[Read]) -> list[Any]:
        return [self._read_one(r) for r in reads]

    async def digest(self) -> str:
        items: list[tuple[str, str, Value]] = []
        items += [(k, "hash", v) for k, v in self.hashes.items() if v]
        items += [(k, "zset", v) for k, v in self.zsets.items() if v]
        items += [(k, "string", v) for k, v in self.strings.items()]
        return digest_items(items)


def _s(v: object) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, float):
        return repr(v)
    return str(v)
