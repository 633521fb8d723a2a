"""The adapters of ``streamrec eval stream``: publish-and-wait, the three systems' answers, retraining.

* :class:`Stream` publishes events to the events topic and waits until the worker's
  watermark (``streams/keys.py`` ``watermark``: partition -> next applied offset) covers them.
* :func:`trending_list` reads the live trending sorted set (the same Redis serving reads).
* :class:`FullSystem` asks the API's ``POST /recommend`` a few requests at a time.
* :func:`train` runs the real training pipeline on everything published so far and
  tells the API to reload; :func:`offline_model` loads that run's frozen retrieval model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import httpx
import numpy as np
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from offline.eval_stream_metrics import FactorRecommender, Query
from schemas.codec import encode
from schemas.events import Event
from streams import keys
from streamrec.errors import UserError
from streamrec.publisher import event_key
from streamrec.runtime import Child
from streamrec.settings import Settings


@dataclass
class Stream:
    settings: Settings
    producer: AIOKafkaProducer
    redis: aioredis.Redis
    worker: Child
    marks: dict[int, int] = field(default_factory=dict)  # partition -> next offset written

    async def publish(self, events: Sequence[Event]) -> None:
        topic = self.settings.topic_events
        for start in range(0, len(events), 2000):
            futs = [await self.producer.send(topic, key=event_key(e), value=encode(e)) for e in events[start:start + 2000]]
            for md in await asyncio.gather(*futs):
                self.marks[md.partition] = max(self.marks.get(md.partition, 0), md.offset + 1)

    async def wait_applied(self, timeout: float = 300.0) -> float:
        """Seconds until the worker has applied everything published so far."""
        t0 = time.monotonic()
        key = keys.namespaced(self.settings.namespace, keys.WATERMARK)
        delay = 0.002
        while True:
            applied = await self.redis.hgetall(key)
            if all(int(applied.get(str(p), 0)) >= off for p, off in self.marks.items()):
                return time.monotonic() - t0
            if not self.worker.alive():
                raise UserError(f"the worker exited: {self.worker.log_tail(5)}")
            if time.monotonic() - t0 > timeout:
                raise UserError(f"the worker did not apply the stream within {timeout:.0f}s "
                                f"(applied {applied}, wanted {self.marks}; log {self.worker.log_path})")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)


async def trending_list(r: aioredis.Redis, namespace: str) -> list[str]:
    """The whole live trending sorted set, best first (what serving's trending source reads)."""
    return [str(i) for i in await r.zrevrange(keys.namespaced(namespace, keys.TRENDING), 0, -1)]


@dataclass
class FullSystem:
    base_url: str
    concurrency: int = 4
    k: int = 10
    mmr_lambda: float | None = None  # None: the server's default
    counts: dict[str, int] = field(default_factory=lambda: {"requests": 0, "degraded": 0, "cold_start": 0,
                                                            "errors": 0})
    sources: dict[str, int] = field(default_factory=dict)  # candidate source of each hit
    seconds: float = 0.0

    async def answer(self, client: httpx.AsyncClient, q: Query) -> tuple[list[str], bool]:
        """The top-k item ids and whether serving answered from its cold-start path (no history)."""
        body: dict[str, Any] = {"user_id": q.user_id, "k": self.k, "exclude": sorted(q.exclude)}
        if self.mmr_lambda is not None:
            body["lambda"] = self.mmr_lambda
        for attempt in range(3):
            try:
                resp = await client.post(f"{self.base_url}/recommend", json=body, timeout=30.0)
                resp.raise_for_status()
                break
            except httpx.HTTPError:
                if attempt == 2:
                    self.counts["errors"] += 1
                    return [], True
                await asyncio.sleep(0.5)
        data = resp.json()
        self.counts["requests"] += 1
        self.counts["degraded"] += bool(data.get("degraded"))
        self.counts["cold_start"] += bool(data.get("cold_start"))
        items = data.get("items", [])
        for it in items:
            if it["item_id"] == q.item_id:
                self.sources[it["source"]] = self.sources.get(it["source"], 0) + 1
        return [str(it["item_id"]) for it in items], bool(data.get("cold_start"))

    async def answers(self, client: httpx.AsyncClient, queries: Sequence[Query]) -> list[tuple[list[str], bool]]:
        t0 = time.monotonic()
        sem = asyncio.Semaphore(self.concurrency)

        async def one(q: Query) -> tuple[list[str], bool]:
            async with sem:
                return await self.answer(client, q)

        out = list(await asyncio.gather(*(one(q) for q in queries)))
        self.seconds += time.monotonic() - t0
        return out


def train(s: Settings, config: Any, log_path: Path) -> Any:
    """The real training run (snapshot from Kafka, retrieval selection, ranker, gate, registry, vectors in
    Redis) on every event published so far; its console output goes to ``log_path``."""
    from offline.train_cli import train_run

    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as f, contextlib.redirect_stdout(f):
        return train_run(s, "kafka", None, None, progress=False, now=datetime.now(timezone.utc), config=config)


async def reload_api(client: httpx.AsyncClient, base_url: str) -> dict[str, Any]:
    resp = await client.post(f"{base_url}/admin/reload", timeout=120.0)
    resp.raise_for_status()
    out: dict[str, Any] = resp.json()
    return out


def offline_model(version_dir: Path, kind: str, trained_users: frozenset[str],
                  fallback: Sequence[str]) -> FactorRecommender:
    """The run's retrieval model as trained (raw factors from ``retrieval.pt``, read with weights_only=True)."""
    from offline.models.base import load_state

    user_ids = json.loads((version_dir / "user_ids.json").read_text())
    item_ids = json.loads((version_dir / "item_ids.json").read_text())
    try:
        _, tensors = load_state(version_dir / "retrieval.pt", kind)
        users, items = tensors["user"].numpy(), tensors["item"].numpy()
    except (KeyError, ValueError):  # a model without plain factors: the published unit vectors
        users = np.load(version_dir / "user_vectors.npy", allow_pickle=False)
        items = np.load(version_dir / "item_vectors.npy", allow_pickle=False)
    return FactorRecommender({u: k for k, u in enumerate(user_ids)}, list(item_ids),
                             np.ascontiguousarray(users, np.float32), np.ascontiguousarray(items, np.float32),
                             trained_users, list(fallback))
