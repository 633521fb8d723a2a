"""Incremental embeddings: forward-decayed weighted means of vectors (pure: numpy).

A user vector is the decayed weighted mean of the (unit) item vectors of the
items the user interacted with; a new item's vector is the decayed weighted
mean of the (unit) vectors of the users who touched it:

    x(now) = sum_k c_k v_k / sum_k c_k,    c_k = w_type(k) * 2^((t_k - epoch) / h)

The common factor 2^(-(now - epoch)/h) cancels in the ratio, so forward decay
needs no rewrite as time passes.  The sums are kept *log-scaled* so that they
never overflow or underflow, whatever the event time (MovieLens is from 1998):

    accumulator bytes = float64 LE [s, D, S_1 .. S_d]  meaning  sum c_k = 2^s D,
                                                               sum c_k v_k = 2^s S
    add (L, v), L = log2 c:   s' = max(s, L);  D' = D 2^(s-s') + 2^(L-s');
                              S' = S 2^(s-s') + v 2^(L-s')
    mean = S / D  (stored beside it as float32 LE bytes)

The add is commutative up to floating-point rounding (the state digest rounds
vectors), idempotent under the store's dedupe, and executed by the store
(``vlogadd`` write; the Lua script and ``MemoryStore`` run this same
arithmetic).  ``logadd_state`` is the reference implementation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class VectorMeta:
    """The item-factor model the vectors belong to (``streamrec:vec:meta``)."""

    version: str
    dim: int


def encode_f32(v: npt.ArrayLike) -> bytes:
    return np.asarray(v, dtype="<f4").tobytes()


def decode_f32(raw: bytes | None, dim: int | None = None) -> Vector | None:
    """float32 LE bytes -> float64 vector; None if absent, malformed or of another dimension."""
    if not raw or len(raw) % 4:
        return None
    v = np.frombuffer(raw, dtype="<f4").astype(np.float64)
    if dim is not None and v.shape[0] != dim:
        return None
    if not np.all(np.isfinite(v)):
        return None
    return v


def unit(v: Vector) -> Vector | None:
    n = float(np.linalg.norm(v))
    return None if n <= 0.0 or not math.isfinite(n) else v / n


def log2_weight(weight: float, ts_s: float, half_life_s: float, epoch_s: float) -> float:
    return math.log2(weight) + (ts_s - epoch_s) / half_life_s


def contribution(log2_w: float, v: Vector) -> bytes:
    """Payload of a ``vlogadd`` write: float64 LE [L, v_1 .. v_d]."""
    out = np.empty(1 + len(v), dtype="<f8")
    out[0] = log2_w
    out[1:] = v
    return out.tobytes()


def logadd_acc(acc: bytes | None, payload: bytes) -> bytes:
    """The accumulator bytes after adding ``payload`` to ``acc`` (see ``logadd_state``)."""
    vals = np.frombuffer(payload, dtype="<f8")
    n = len(vals) - 1
    big_l = float(vals[0])
    if acc is not None and len(acc) == (n + 2) * 8:
        cur = np.frombuffer(acc, dtype="<f8")
        s, d, sums = float(cur[0]), float(cur[1]), cur[2:]
    else:
        s, d, sums = big_l, 0.0, np.zeros(n)
    s2 = s if s >= big_l else big_l
    fo = 2.0 ** (s - s2)
    fn = 2.0 ** (big_l - s2)
    out = np.empty(n + 2, dtype="<f8")
    out[0], out[1] = s2, d * fo + fn
    out[2:] = sums * fo + vals[1:] * fn
    return out.tobytes()


def logadd_state(acc: bytes | None, payload: bytes) -> tuple[bytes, bytes]:
    """(new accumulator bytes, float32 mean bytes) after adding ``payload`` to ``acc``.

    A missing accumulator, or one of another dimension, starts from zero.
    """
    new = logadd_acc(acc, payload)
    arr = np.frombuffer(new, dtype="<f8")
    return new, (arr[2:] / arr[1]).astype("<f4").tobytes()


def mean_of(acc: bytes | None) -> Vector | None:
    """The weighted mean S/D held by an accumulator (None if empty)."""
    if not acc or len(acc) < 24 or len(acc) % 8:
        return None
    arr = np.frombuffer(acc, dtype="<f8")
    d = float(arr[1])
    if not d > 0:
        return None
    return np.asarray(arr[2:] / d, dtype=np.float64)


def reference_mean(vectors: list[Vector], weights: list[float], ts_s: list[float], half_life_s: float,
                   now_s: float) -> Vector:
    """Batch definition: sum_k w_k 2^(-(now-t_k)/h) v_k / sum_k w_k 2^(-(now-t_k)/h)."""
    c = np.array([w * 2.0 ** (-(now_s - t) / half_life_s) for w, t in zip(weights, ts_s)])
    m = np.asarray(vectors, dtype=np.float64)
    out: Vector = (c[:, None] * m).sum(axis=0) / c.sum()
    return out
