"""Helpers shared by the serving integration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import redis

from serving.item_index import write_artifacts
from streams import keys
from streamrec.settings import Settings


def with_serving(settings: Settings, tmp: Path, **update: Any) -> Settings:
    base = {"serving_registry_dir": tmp / "models", "serving_reload_interval_s": 0.2,
            "serving_trending_refresh_s": 0.2, "serving_budget_ms": 2000.0}
    base.update(update)
    return settings.model_copy(update=base)


def two_category_catalogue(ann_dir: Path, n: int = 20, dim: int = 8) -> tuple[list[str], list[str]]:
    """Items a0.. (category A, vectors near e0) and b0.. (category B, near e1)."""
    rng = np.random.default_rng(1)
    a = [f"a{i}" for i in range(n)]
    b = [f"b{i}" for i in range(n)]
    va = np.eye(dim)[0] + 0.1 * rng.normal(size=(n, dim))
    vb = np.eye(dim)[1] + 0.1 * rng.normal(size=(n, dim))
    write_artifacts(ann_dir, a + b, np.vstack([va, vb]))
    return a, b


def seed_state(r: redis.Redis, ns: str, items: list[str], cats: list[str], history: dict[str, list[str]]) -> None:
    """Write trending/meta/history straight into the namespace (as the worker would)."""
    for rank, (item, cat) in enumerate(zip(items, cats)):
        r.zadd(keys.namespaced(ns, keys.TRENDING), {item: 1000.0 - rank})
        r.hset(keys.namespaced(ns, keys.item_meta(item)), "categories", f'["{cat}"]')
    for user, seen in history.items():
        r.zadd(keys.namespaced(ns, keys.user_history(user)), {i: 1.7e9 + n for n, i in enumerate(seen)})
