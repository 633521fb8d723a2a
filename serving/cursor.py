"""Opaque, signed paging cursors: the request seed and every item already served.

A cursor is ``base64url(zlib(json)) + "." + base64url(hmac_sha256[:16])``.  The
payload holds the user it was issued to, the seed of the first page and the ids
served so far; the next page excludes all of them, so paging never repeats an
item.  The HMAC key comes from settings (shared by every replica) or is random
per process.  Tampered, foreign or malformed cursors raise :class:`BadCursor`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib
from dataclasses import dataclass

import orjson

VERSION = 1


class BadCursor(ValueError):
    """The cursor cannot be used; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Cursor:
    user_id: str
    seed: str
    served: tuple[str, ...]


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class CursorCodec:
    def __init__(self, key: bytes, max_served: int = 1000) -> None:
        if not key:
            raise ValueError("cursor key must not be empty")
        self._key = key
        self.max_served = max_served

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:16]

    def encode(self, cur: Cursor) -> str:
        payload = orjson.dumps({"v": VERSION, "u": cur.user_id, "s": cur.seed, "ids": list(cur.served)})
        body = zlib.compress(payload, 6)
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def decode(self, token: str, user_id: str) -> Cursor:
        body_s, sep, mac_s = token.partition(".")
        if not sep:
            raise BadCursor("cursor is malformed: pass back next_cursor exactly as returned")
        try:
            body, mac = _unb64(body_s), _unb64(mac_s)
        except (ValueError, TypeError) as err:
            raise BadCursor("cursor is malformed: pass back next_cursor exactly as returned") from err
        if not hmac.compare_digest(mac, self._mac(body)):
            raise BadCursor("cursor signature does not match (tampered, or issued by another deployment)")
        try:
            data = orjson.loads(zlib.decompress(body))
        except (zlib.error, orjson.JSONDecodeError) as err:
            raise BadCursor("cursor payload is unreadable") from err
        if not isinstance(data, dict) or data.get("v") != VERSION:
            raise BadCursor("cursor version is not supported: start again without a cursor")
        if data.get("u") != user_id:
            raise BadCursor("cursor was issued for another user_id")
        ids = data.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise BadCursor("cursor payload is unreadable")
        return Cursor(user_id, str(data.get("s", "")), tuple(ids))

    def next(self, prev: Cursor | None, user_id: str, seed: str, new_ids: list[str]) -> str | None:
        """The cursor for the page after this one; None once ``max_served`` items were served."""
        served = (prev.served if prev else ()) + tuple(new_ids)
        if not new_ids or len(served) > self.max_served:
            return None
        return self.encode(Cursor(user_id, prev.seed if prev else seed, served))
