"""Synthetic catalogue, online state, item vectors and a trained LightGBM model for the serving
bench and the serving integration tests (deterministic for a seed)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from offline.ranker_train import LambdaRankParams, train_lambdarank
from offline.registry import ModelMeta, ModelRegistry
from schemas.events import Click, Event, ItemMeta, View
from serving.item_index import write_artifacts
from serving.scoring import RETRIEVAL
from streams.batch import Record, plan_batch
from streams.features.categories import batch_contexts, context_reads_for_batch
from streams.features.registry import all_writes, feature_names
from streams.store import Guarded, Store
from schemas.codec import encode


def catalogue(n_items: int, n_cats: int, dim: int, seed: int = 0) -> tuple[list[str], list[str], np.ndarray]:
    """Item ids, one category each, and vectors clustered by category."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_cats, dim))
    cats = [f"c{i % n_cats}" for i in range(n_items)]
    vecs = centres[np.arange(n_items) % n_cats] + 0.5 * rng.normal(size=(n_items, dim))
    return [f"item{i}" for i in range(n_items)], cats, vecs.astype(np.float32)


def events(items: Sequence[str], cats: Sequence[str], n_users: int, n_events: int, now: datetime,
           seed: int = 0) -> list[Event]:
    rng = np.random.default_rng(seed)
    out: list[Event] = [ItemMeta(event_id=f"meta-{i}", ts=now - timedelta(days=3), item_id=i, categories=[c])
                        for i, c in zip(items, cats)]
    pop = rng.zipf(1.3, size=n_events) % len(items)
    for j in range(n_events):
        ts = now - timedelta(seconds=float(rng.uniform(0, 2 * 86400)))
        user, item = f"user{j % n_users}", items[int(pop[j])]
        if j % 3:
            out.append(View(event_id=f"v{j}", ts=ts, user_id=user, item_id=item, dwell_ms=int(rng.integers(100, 90_000))))
        else:
            out.append(Click(event_id=f"c{j}", ts=ts, user_id=user, item_id=item))
    return out


async def apply_all(store: Store, evs: Sequence[Event], now: datetime, batch: int = 500) -> None:
    """Online state (trending, history, meta) and every feature family, as the worker would."""
    for start in range(0, len(evs), batch):
        chunk = list(evs[start:start + batch])
        plan = plan_batch([Record(0, start + k, encode(e)) for k, e in enumerate(chunk)], now, "bench")
        reads = context_reads_for_batch(chunk)
        ctxs = batch_contexts(chunk, reads, await store.read(reads) if reads else [])
        guarded = [Guarded(g.dedupe_id, g.writes + tuple(all_writes(e, ctx=c)))
                   for g, e, c in zip(plan.guarded, chunk, ctxs)]
        await store.apply(guarded)


def train_model(seed: int = 0, n_groups: int = 200, per_group: int = 20, rounds: int = 60) -> tuple[str, list[str]]:
    """A small LambdaRank model over the registry's features + retrieval_score; returns (text, names)."""
    names = list(feature_names()) + [RETRIEVAL]
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    X = rng.normal(size=(n, len(names)))
    X[rng.random(X.shape) < 0.1] = np.nan
    signal = np.nan_to_num(X[:, -1]) + 0.5 * np.nan_to_num(X[:, 0]) + 0.3 * rng.normal(size=n)
    y = np.clip(np.round(signal + 1), 0, 4)
    groups = np.repeat(np.arange(n_groups), per_group)
    params = LambdaRankParams(num_boost_round=rounds, early_stopping_rounds=rounds, num_threads=1, seed=seed,
                              min_data_in_leaf=5)
    trained = train_lambdarank(X, y, groups, groups.astype(float), names, params)
    return trained.model_text(), names


def publish_model(registry_root: Path, work: Path, now: datetime, seed: int = 0,
                  ann: tuple[Sequence[str], np.ndarray] | None = None, rounds: int = 60) -> str:
    """Train, publish and promote a model (with ANN artifacts when given); returns its version."""
    text, names = train_model(seed, rounds=rounds)
    work.mkdir(parents=True, exist_ok=True)
    (work / "model.txt").write_text(text)
    files: dict[str, Path] = {"model.txt": work / "model.txt"}
    if ann is not None:
        write_artifacts(work, ann[0], ann[1])
        files.update({"item_ids.json": work / "item_ids.json", "item_vectors.npy": work / "item_vectors.npy"})
    reg = ModelRegistry(registry_root)
    meta = ModelMeta(metrics={"ndcg@10": 0.5}, feature_names=tuple(names), data_start=now, data_end=now,
                     trained_at=now, training_seconds=1.0, notes={"seed": str(seed)})
    version = reg.publish(files, meta, now)
    reg.promote(version, now)
    return version


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
