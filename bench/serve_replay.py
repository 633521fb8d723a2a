"""CPU per request of the serving pipeline in process, without I/O: recorded Redis replies, replayed.

    python -m bench.serve_replay [--json PATH] [--users 300] [--reps 5]

Sets up what ``streamrec bench serve`` serves (own Redis and broker on free ports,
10,000 items, the synthetic events, a trained model with item vectors), builds the
API's state in this process and warms it, then answers one ``/recommend`` per user
through ``Pipeline.recommend`` while recording the two Redis replies of each
(``LiveReader.head`` and ``.live``).  It then replays those requests ``--reps`` times
against the recorded replies, with impressions built but not enqueued, and reports
the thread CPU time per request and per stage.  No sockets, no other process and no
waiting are measured, so the figure moves much less than the end-to-end bench's on a
shared machine: use it to compare two versions of the pipeline's own Python (run it
at each commit), and ``bench serve`` for the whole API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import types
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bench.common import cleanup
from bench.serve import _prepare
from bench.serve_data import catalogue, publish_model
from streamrec import services

STAGES = ("candidates", "features", "score", "mmr", "total")


class _Recording:
    """A LiveReader that records the real one's answers per user, then replays them."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.heads: dict[str, Any] = {}
        self.lives: dict[str, Any] = {}
        self.replaying = False

    async def head(self, user_id: str, trending: int, fresh: int) -> Any:
        if self.replaying:
            return self.heads[user_id]
        got = self.heads[user_id] = await self.real.head(user_id, trending, fresh)
        return got

    async def live(self, reads: Sequence[Any], items: Sequence[str], user_id: str,
                   cat_items: Sequence[str] | None = None) -> Any:
        if self.replaying:
            return self.lives[user_id]
        got = self.lives[user_id] = await self.real.live(reads, items, user_id, cat_items)
        return got


async def _replay(env: dict[str, str], users: int, reps: int) -> dict[str, Any]:
    os.environ.update(env)
    import serving.pipeline as pipeline_module
    from serving.pipeline import RecRequest
    from serving.state import AppState
    from streamrec.settings import Settings

    state = AppState.create(Settings())
    await state.start()
    p = state.pipeline
    try:
        for _ in range(1200):  # the start-up warm-up: item rows and neighbours of the whole catalogue
            vec = p.index.current
            if vec is not None and p.fetcher.cached_count() >= len(vec) and vec.neighbours_cached() >= len(vec):
                break
            await asyncio.sleep(0.1)
        for t in state._tasks:  # no background refresh while measuring
            t.cancel()
        rec = _Recording(p.fetcher.live)
        p.fetcher.live = rec
        reqs = [RecRequest(f"user{u}", 20, f"replay-{u}", None) for u in range(users)]
        first = {}
        for r in reqs:
            res = await p.recommend(r)
            first[r.user_id] = [(i.item_id, i.score, i.source) for i in res.items]
        reqs = [r for r in reqs if r.user_id in rec.lives]  # a degraded answer has nothing to replay
        rec.replaying = True
        p.impressions.log = lambda pending: None  # type: ignore[method-assign]
        setattr(pipeline_module, "time", types.SimpleNamespace(perf_counter=time.thread_time))
        stages: dict[str, list[float]] = {s: [] for s in STAGES}
        cpu0 = time.thread_time()
        for _ in range(reps):
            for r in reqs:
                res = await p.recommend(r)
                for k, v in res.timings.items():
                    stages[k].append(v)
        cpu = time.thread_time() - cpu0
        same = True
        for r in reqs[:20]:
            again = await p.recommend(r)
            same = same and [(i.item_id, i.score, i.source) for i in again.items] == first[r.user_id]
        return {
            "requests": len(reqs) * reps, "users": len(reqs), "reps": reps,
            "cpu_ms_per_request": round(1000 * cpu / max(1, len(reqs) * reps), 3),
            "stages_cpu_ms_mean": {s: round(float(np.mean(v)), 3) for s, v in stages.items() if v},
            "replayed_answers_equal_live": same,  # the first 20 users' answers, replayed vs recorded
            "model_version": p.models.current.ranker.version,
        }
    finally:
        setattr(pipeline_module, "time", time)
        await state.close()


def run(users: int = 300, reps: int = 5, n_items: int = 10_000) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="streamrec-replay-"))
    red = services.start_redis(services.free_port(), root / "redis", aof=False)
    kafka = services.start_kafka(services.free_port(), root / "kafka")
    ok = False
    try:
        asyncio.run(_prepare(red.port, "bench", n_items, 1000, 40_000))
        ids, _, vecs = catalogue(n_items, 50, 32)
        publish_model(root / "models", root / "work", datetime.now(timezone.utc), ann=(ids, vecs), rounds=100)
        env = {
            "STREAMREC_REDIS_URL": f"redis://127.0.0.1:{red.port}/0",
            "STREAMREC_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka.port}",
            "STREAMREC_NAMESPACE": "bench", "STREAMREC_STATE_DIR": str(root / "state"),
            "STREAMREC_SERVING_REGISTRY_DIR": str(root / "models"), "STREAMREC_SERVING_LOG_LEVEL": "WARNING",
            "STREAMREC_SERVING_MAX_CANDIDATES": "300",
        }
        out = asyncio.run(_replay(env, users, reps))
        ok = True
    finally:
        kafka.stop()
        red.stop()
        cleanup(root, ok)
    out.update({"items": n_items, "candidates": 300, "k": 20, "load_average": round(os.getloadavg()[0], 2)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    res = run(args.users, args.reps)
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
