"""A JSON array's top-level elements as byte slices, found without parsing them (pure).

orjson refuses any document nested deeper than 1,024 levels.  A batch record wraps its
events in one array, so an event that is 1,024 levels deep parses on its own but not
inside the record, and without this the whole record (every good event in it too) was
one rejection.  ``decode_record`` then splits the record here and decodes each element
on its own, as the batch contract promises.

Only the structure is checked: strings are skipped whole (escapes included), brackets
must balance and match, and elements are separated by commas at depth 1.  What lies
between the brackets is left to the parser, element by element.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[{]+|[\]}]+|[,"]', re.DOTALL)
_MATCH = bytes.maketrans(b"]}", b"[{")
_WS = b" \t\r\n"


def split_array(raw: bytes, limit: int | None = None) -> list[bytes] | None:
    """The top-level elements of ``raw``, a JSON array, or None when its structure is broken
    (unbalanced or mismatched brackets, an unterminated string, an empty element, bytes after
    the closing bracket) or it has more than ``limit`` elements.  ``[]`` gives ``[]``."""
    body = raw.strip(_WS)
    if body[:1] != b"[" or body[-1:] != b"]":
        return None
    stack = bytearray()  # the open brackets, innermost last
    out: list[bytes] = []
    start = 1
    end = len(body) - 1
    for m in _TOKEN.finditer(body):
        tok = m.group()
        c = tok[0]
        if c == 0x22:  # a string, skipped whole; a lone quote is an unterminated one
            if len(tok) == 1:
                return None
        elif c in (0x5B, 0x7B):  # a run of [ and {
            stack += tok
        elif c in (0x5D, 0x7D):  # a run of ] and }: each must close the innermost open bracket
            n = len(tok)
            if n > len(stack) or stack[len(stack) - n:] != tok[::-1].translate(_MATCH):
                return None
            del stack[len(stack) - n:]
            if not stack:  # the outer array closed: it must be the last byte
                if m.end() - 1 != end:
                    return None
                last = body[start:end].strip(_WS)
                if last:
                    out.append(last)
                elif out:  # a trailing comma
                    return None
                return None if limit is not None and len(out) > limit else out
        elif len(stack) == 1:  # a comma between elements
            elem = body[start:m.start()].strip(_WS)
            if not elem or (limit is not None and len(out) >= limit):
                return None
            out.append(elem)
            start = m.start() + 1
    return None  # never closed
