"""A stable digest of a namespace's state, shared by every store implementation.

Floats are rounded to 9 significant digits so that commutative updates applied
in a different interleaving (floating-point addition is not associative) still
give the same digest.  Operational keys are excluded: dedupe marks (they
expire), the offsets watermarks and the stats hash (they count retries and duplicates,
which legitimately differ between a live run and a replay).
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Union

EXCLUDED_PREFIXES = ("dedupe:", "metrics:", "replay:", "streamrec:", "lbl:ix:")
F64_PREFIXES = ("vacc:",)  # float64 LE arrays, hashed rounded like other floats
F32_PREFIXES = ("vec:",)  # float32 LE arrays
EXCLUDED_KEYS = frozenset({"watermark", "impressions_watermark", "stats"})

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


def norm_vector(raw: bytes, dtype: str) -> str:
    """Vectors are sums of floats whose order depends on the interleaving: round each
    element to 6 digits *relative to the largest element* (near-cancelling sums differ
    in sign and exponent between interleavings).  float64 accumulators
    ([scale, D, S...], streams/embeddings.py) round scale and D on their own."""
    import numpy as np

    size = np.dtype(dtype).itemsize
    if len(raw) % size:
        return norm_scalar(raw)
    arr = np.frombuffer(raw, dtype=dtype).astype(np.float64)
    head: list[str] = []
    if dtype == "<f8" and arr.size >= 2:
        head = [format(float(x), ".9g") for x in arr[:2]]
        arr = arr[2:]
    top = float(np.max(np.abs(arr))) if arr.size else 0.0
    body = [format(round(float(x) / top, 6) + 0.0, ".6f") for x in arr] if top > 0 else ["0"] * arr.size
    return "v:" + ",".join(head + [format(top, ".6g")] + body)


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
        elif isinstance(value, bytes) and key.startswith(F64_PREFIXES + F32_PREFIXES):
            h.update(norm_vector(value, "<f8" if key.startswith(F64_PREFIXES) else "<f4").encode())
        else:
            h.update(norm_scalar(value).encode())
        h.update(b"\x02")
    return h.hexdigest()
