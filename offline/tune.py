"""Hyper-parameter search on a validation split carved from the *training* positives only.

The protocol's test split is never looked at here: the training 80% is split again
(random 80/20, seed 1) into fit / validation, each candidate config is fitted on the
fit part and ranked by validation NDCG@10 (recall@10 recorded too).  The chosen configs
are the defaults in :mod:`offline.eval_offline`.

    python -m offline.tune als bpr ease two_tower --json tune.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from offline import movielens
from offline.evaluator import evaluate_scorer
from offline.interactions import Interactions
from offline.models.als import ALS, ALSConfig
from offline.models.base import Recommender
from offline.models.bpr import BPR, BPRConfig
from offline.models.ease import EASE, EASEConfig
from offline.models.side_info import movielens_features
from offline.models.two_tower import TwoTower, TwoTowerConfig
from offline.split import protocol_split, validation_split

GRIDS: dict[str, dict[str, list[Any]]] = {
    "als": {"factors": [64, 128], "regularization": [5.0, 20.0, 50.0], "alpha": [2.0, 5.0, 15.0], "use_values": [False, True]},
    "bpr": {"factors": [64, 128], "learning_rate": [0.003, 0.01], "regularization": [1e-4, 1e-3, 3e-3]},
    "ease": {"l2": [100.0, 200.0, 400.0, 800.0, 1500.0], "use_values": [False, True]},
    "two_tower": {"temperature": [0.05, 0.1], "id_dropout": [0.1, 0.3], "epochs": [10, 20]},
}


@dataclass(frozen=True)
class Trial:
    model: str
    params: dict[str, Any]
    ndcg: float
    recall: float


def _grid(grid: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        yield dict(zip(keys, values))


def tune(
    name: str,
    builder: Callable[[dict[str, Any]], Recommender],
    grid: dict[str, list[Any]],
    fit_part: Interactions,
    valid: Interactions,
    log: Callable[[str], None] = print,
) -> list[Trial]:
    """Fit each config on ``fit_part``; score on ``valid``; best first."""
    trials = []
    for params in _grid(grid):
        model = builder(params).fit(fit_part)
        m = evaluate_scorer(model.score, fit_part, valid, k=10)
        trials.append(Trial(name, params, m.ndcg, m.recall))
        log(f"{name} {params} ndcg@10={m.ndcg:.4f} recall@10={m.recall:.4f}")
    return sorted(trials, key=lambda t: -t.ndcg)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", choices=sorted(GRIDS))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--grid", type=json.loads, default=None, help='JSON override, e.g. {"l2": [300.0]}')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    ml = movielens.load()
    data = protocol_split(ml)
    v = validation_split(data.split.train)
    _, item_f, user_f = movielens_features(ml.movies, ml.users, data.item_ids, data.user_ids)
    builders: dict[str, Callable[[dict[str, Any]], Recommender]] = {
        "als": lambda p: ALS(replace(ALSConfig(), **p)),
        "bpr": lambda p: BPR(replace(BPRConfig(), **p)),
        "ease": lambda p: EASE(replace(EASEConfig(), **p)),
        "two_tower": lambda p: TwoTower(user_f, item_f, replace(TwoTowerConfig(), **p)),
    }
    results = {name: [asdict(t) for t in tune(name, builders[name], args.grid or GRIDS[name], v.train, v.test)] for name in args.models}
    for name, trials in results.items():
        print(f"best {name}: {trials[0]}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
