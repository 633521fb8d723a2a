"""The offline subcommands' bodies (``streamrec train | models | eval offline | generate | bench train``).

``streamrec/cli.py`` only parses arguments and calls these; each turns user
mistakes into :class:`UserError` (one clear line) and prints paths and numbers.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from offline.registry import CorruptVersion, ModelRegistry, RegistryError
from offline.snapshot import Snapshot, TimeRange, open_snapshot, write_snapshot
from streamrec.errors import UserError
from streamrec.settings import Settings


def _now() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise UserError(f"bad time {text!r}: use ISO 8601, e.g. 2024-01-31T00:00:00Z") from err
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def movielens_snapshot(directory: Path) -> Snapshot:
    from offline.movielens import DatasetMissing, load
    from streamrec.movielens_events import metadata_events, rating_events

    try:
        ml = load()
    except DatasetMissing as err:
        raise UserError(str(err)) from err
    return write_snapshot(directory, [*metadata_events(ml), *rating_events(ml)], [], TimeRange(), "movielens ml-100k")


def _redis(s: Settings) -> Any:
    import redis

    client = redis.Redis.from_url(s.redis_url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.exceptions.RedisError as err:
        print(f"warning: Redis at {s.redis_url} unreachable ({err}); vectors will not be published to Redis")
        return None
    return client


def train_run(s: Settings, source: str, since: str | None, until: str | None, progress: bool = True,
              now: datetime | None = None, config: Any = None) -> Any:
    """One run; ``source`` is 'kafka', 'movielens' or a snapshot directory."""
    from offline.train_pipeline import TrainConfig, train_once

    import torch

    torch.set_num_threads(1)  # shared machines: one thread (LightGBM is set to one too)
    now = now or _now()
    run_dir = s.runs_dir / f"{now:%Y%m%dT%H%M%S}Z"
    for k in range(1, 100):  # two runs within one second get distinct directories
        if not run_dir.exists():
            break
        run_dir = s.runs_dir / f"{now:%Y%m%dT%H%M%S}Z-{k}"
    if source == "kafka":
        from offline.kafka_source import snapshot_from_kafka

        snap = snapshot_from_kafka(s, run_dir / "snapshot", TimeRange(parse_time(since), parse_time(until)), progress)
    elif source == "movielens":
        snap = movielens_snapshot(run_dir / "snapshot")
    else:
        path = Path(source)
        if not (path / "snapshot.json").is_file():
            raise UserError(f"{source} is not a snapshot directory (no snapshot.json): use kafka, movielens or a "
                            "directory written by `streamrec generate`")
        snap = open_snapshot(path)
    if snap.n_events == 0:
        raise UserError("the snapshot holds no events: publish some (`streamrec publish movielens`) or widen --since/--until")
    cfg = config or TrainConfig(gate_margin=s.train_gate_margin, namespace=s.namespace)
    client = _redis(s) if source == "kafka" else None
    try:
        result = train_once(snap, ModelRegistry(s.registry_dir), run_dir, now, cfg, client, progress)
    except ValueError as err:
        raise UserError(f"training failed: {err}") from err
    print(result.summary())
    print(f"log: {result.log_path}")
    print(f"report: {result.report_path}")
    return result


def train_command(s: Settings, source: str, since: str | None, until: str | None, every: str | None,
                  min_new_labels: int | None, max_runs: int | None = None) -> int:
    from offline.schedule import Trigger, parse_period, run_every

    every = every or s.train_every
    threshold = s.train_min_new_labels if min_new_labels is None else min_new_labels
    if every is None and threshold == 0:
        train_run(s, source, since, until)
        return 0
    try:
        trigger = Trigger(parse_period(every) if every else None, threshold)
    except ValueError as err:
        raise UserError(str(err)) from err

    def count() -> int:
        from offline.kafka_source import topic_size

        return asyncio.run(topic_size(s, s.topic_training))

    def job(reason: str) -> None:
        print(f"[{_now().isoformat()}] training run: {reason}")
        train_run(s, source, since, until)

    run_every(trigger, job, time.time, time.sleep, count, max_runs=max_runs)
    return 0


def models_command(s: Settings, action: str, version: str | None) -> int:
    reg = ModelRegistry(s.registry_dir)
    try:
        if action == "list":
            cur = reg.current()
            versions = reg.list_versions()
            if not versions:
                print(f"no models in {reg.root}: run `streamrec train`")
            for v in versions:
                try:
                    m = reg.manifest(v)
                    line = (f"ndcg@10={m.metrics.get('ndcg@10', float('nan')):.4f} data {m.data_start:%Y-%m-%d}.."
                            f"{m.data_end:%Y-%m-%d} trained {m.training_seconds:.0f}s "
                            f"retrieval={m.notes.get('retrieval_model', '?')}")
                except CorruptVersion as err:
                    line = f"PARTIAL/CORRUPT: {err}"
                print(f"{'*' if v == cur else ' '} {v}  {line}")
        elif action == "promote":
            if not version:
                raise UserError("say which version: `streamrec models promote VERSION` (see `streamrec models list`)")
            reg.promote(version, _now())
            print(f"promoted {version}")
        else:
            print(f"rolled back to {reg.rollback(_now())}")
    except RegistryError as err:
        raise UserError(str(err)) from err
    return 0


def eval_command(dataset: str, json_out: Path | None) -> int:
    from offline.eval_offline import evaluate

    if dataset != "ml-100k":
        raise UserError(f"unknown dataset {dataset!r}: only ml-100k is supported")
    report = evaluate(json_out)
    print(json.dumps(report["models"], indent=2))
    if json_out:
        print(f"wrote {json_out}")
    return 0


def generate_command(out: Path, events: int, users: int, items: int, seed: int) -> int:
    from offline.synthetic import SyntheticConfig, generate

    t0 = time.perf_counter()
    snap = generate(out, SyntheticConfig(events=events, users=users, items=items, seed=seed), _now())
    print(f"wrote {snap.n_events} events ({users} users, {items} items) to {out} in {time.perf_counter() - t0:.1f}s")
    return 0


def bench_train_command(s: Settings, source: str, json_out: Path | None) -> int:
    """Time one full retrain (snapshot already on disk) and report peak RSS, as JSON."""
    from offline.train_pipeline import TrainConfig

    cfg = TrainConfig(gate_margin=s.train_gate_margin, namespace=s.namespace)
    t0 = time.perf_counter()
    result = train_run(s, source, None, None, progress=False, config=cfg)
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"source": source, "seconds": round(seconds, 1), "peak_rss_mb": round(rss_mb, 1),
           "stage_seconds": result.stage_seconds, "ndcg@10": result.metrics["ndcg@10"],
           "retrieval_model": result.retrieval_model, "version": result.version, "report": str(result.report_path)}
    text = json.dumps(out, indent=2)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(text + "\n")
    print(text)
    return 0
