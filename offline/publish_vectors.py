"""Adapter: publish trained vectors to Redis in the streams' documented key format (streams/keys.py).

* item vectors -> ``streamrec:vec:{version}:item:{i}`` (global, float32 little-endian bytes);
* user vectors -> ``{namespace}:vec:{version}:user:{{u}}`` (the key serving reads; the
  stream's fold-in refines it on the user's next interaction);
* ``streamrec:vec:meta`` = {version, dim} is set only by :func:`activate`, i.e. when the
  version is promoted, so the stream's fold-in always uses the version serving uses.

``version`` is the registry version of the model the vectors belong to.  Never pickle.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from streams import keys

CHUNK = 2000


def to_bytes(v: np.ndarray) -> bytes:
    return np.ascontiguousarray(v, dtype="<f4").tobytes()


def from_bytes(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f4")


def vector_writes(version: str, namespace: str, item_ids: Sequence[str], item_vectors: np.ndarray,
                  user_ids: Sequence[str], user_vectors: np.ndarray) -> list[tuple[str, bytes]]:
    """(key, value) pairs to SET; pure."""
    out = [(keys.trained_item_vector(version, i), to_bytes(v)) for i, v in zip(item_ids, item_vectors)]
    out += [(keys.namespaced(namespace, keys.user_vector(version, u)), to_bytes(v))
            for u, v in zip(user_ids, user_vectors)]
    return out


def publish(client: Any, version: str, namespace: str, item_ids: Sequence[str], item_vectors: np.ndarray,
            user_ids: Sequence[str], user_vectors: np.ndarray) -> int:
    """Write every vector with pipelined SETs (``client`` is a sync ``redis.Redis``); returns the count."""
    pairs = vector_writes(version, namespace, item_ids, item_vectors, user_ids, user_vectors)
    for start in range(0, len(pairs), CHUNK):
        pipe = client.pipeline(transaction=False)
        for k, v in pairs[start : start + CHUNK]:
            pipe.set(k, v)
        pipe.execute()
    return len(pairs)


def live_namespace(client: Any, default: str) -> str:
    """The live namespace (``streamrec:live`` pointer, set by ``replay --swap``), else ``default``."""
    v = client.get(keys.LIVE_POINTER)
    return (v.decode() if isinstance(v, bytes) else v) or default


def activate(client: Any, version: str, dim: int) -> None:
    """Point the stream's fold-in at ``version`` (one HSET of both fields: atomic)."""
    client.hset(keys.VEC_META, mapping={"version": version, "dim": str(dim)})


def active_version(client: Any) -> str | None:
    raw = client.hgetall(keys.VEC_META)
    v = raw.get(b"version") if raw and isinstance(next(iter(raw)), bytes) else (raw or {}).get("version")
    return v.decode() if isinstance(v, bytes) else v
