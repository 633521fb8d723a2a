"""The demo's training step: the real pipeline, sized to add well under a minute.

Reads the events the demo just published back from Kafka into a Parquet
snapshot, selects between ALS and BPR by validation recall, builds the FAISS
index, trains the LambdaRank ranker on backfilled groups (hard negatives from the
retrieval model's candidates, point-in-time features), publishes to the registry
under the demo's state dir -- promoted only if it ranks at least as well as the
retrieval order on the same validation groups (otherwise serving keeps its
heuristic) -- and the vectors to the demo's Redis.  Called by ``streamrec.demo``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import torch

from offline.movielens import MovieLens
from offline.ranker_data import RankerDataConfig
from offline.retrieval import RetrievalConfig
from offline.train_pipeline import TrainConfig, TrainResult
from streamrec.settings import Settings

DEMO_CONFIG = TrainConfig(
    retrieval=RetrievalConfig(candidates=("als", "bpr")),
    # replay the whole log for point-in-time features: a 14-day replay sees only the last weeks of all-time
    # aggregates (rating_mean_by_item, rating_mean_by_user, ...) that serving reads over the whole history
    ranker_data=RankerDataConfig(max_backfill_groups=2000, replay_horizon_s=None),
)


def train_for_demo(settings: Settings, ml: MovieLens, root: Path) -> str:
    from offline.train_cli import train_run

    torch.set_num_threads(1)
    s = settings.model_copy(update={"train_runs_dir": root / "train_runs"})
    cfg = replace(DEMO_CONFIG, gate_margin=s.train_gate_margin, namespace=s.namespace)
    r = train_run(s, "kafka", None, None, progress=True, now=datetime.now(timezone.utc), config=cfg)
    return demo_summary(r)


def demo_summary(r: TrainResult) -> str:
    """One line: ranker vs retrieval order on the same validation groups, and the gate's decision and why."""
    base = r.retrieval_order.get("ndcg@10", float("nan"))
    state = "promoted" if r.promoted else "NOT promoted (serving keeps its current model or heuristic)"
    return (f"{r.retrieval_model} + LambdaRank, validation NDCG@10 {r.metrics['ndcg@10']:.4f} vs retrieval order "
            f"{base:.4f}; model {r.version} {state}: {r.gate_reason}; {r.vectors_published} vectors in Redis, "
            f"{r.seconds:.0f}s; report {r.report_path}")
