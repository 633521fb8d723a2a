"""A stable digest of a namespace's state, shared by every store implementation.

Floats are rounded to 9 significant digits so that commutative updates applied
in a different interleaving (floating-point addition is not associative) still
give the same digest.  Operational keys are excluded: dedupe marks (they
expire), the watermark and the stats hash (they count retries and duplicates,
which legitimately differ between a live run and a replay).
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Union

EXCLUDED_PREFIXES = ("dedupe:",)
EXCLUDED_KEYS = frozenset({"watermark", "stats"})

Value = Union[bytes, dict[str, str], dict[str, float]]


def included(logical_key: str) -> bool:
    return logical_key not in EXCLUDED_KEYS and not logical_key.startswith(EXCLUDED_PREFIXES)


def norm_scalar(v: str | float | bytes) -> str:
    if isinstance(v, bytes):
        return "b:" + v.hex()
    if isinstance(v, float):
        return format(v, ".9g")
    try:
        if any(c in v for c in ".eE") or v in ("inf", "-inf", "nan"):
            return format(float(v), ".9g")
        return str(int(v))
    except ValueError:
        return "s:" + v


def digest_items(items: Iterable[tuple[str, str, Value]]) -> str:
    """``items``: (logical key, redis type, value) in any order."""
    h = hashlib.sha256()
    for key, typ, value in sorted(items, key=lambda t: t[0]):
        if not included(key):
            continue
        h.update(f"{key}\x00{typ}\x00".encode())
        if isinstance(value, dict):
            for f in sorted(value):
                h.update(f"{f}={norm_scalar(value[f])}\x01".encode())
        else:
            h.update(norm_scalar(value).encode())
        h.update(b"\x02")
    return h.hexdigest()
