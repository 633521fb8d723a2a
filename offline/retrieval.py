"""Pick the retrieval model by validation recall, and record why.

The positives are cut by event time: the latest ``valid_fraction`` are the
validation set, the rest the fit set.  Every candidate (ALS, BPR, two-tower: all
factor models, so their item vectors can feed FAISS) is fitted on the fit set
and ranks the full catalogue (each user's fit items excluded) for up to
``max_eval_users`` validation users.  The winner has the highest recall@k; NDCG@10
is recorded alongside.  The winner's fit-set model also gives the ranker's
``retrieval_score`` for groups in the validation period (it never saw them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from offline.dataset import TrainingData, time_cut
from offline.evaluator import recommend
from offline.interactions import Interactions
from offline.metrics import hit_matrix, ndcg_at_k, recall_at_k
from offline.models.als import ALS, ALSConfig
from offline.models.base import FactorModel
from offline.models.bpr import BPR, BPRConfig
from offline.models.two_tower import TwoTower, TwoTowerConfig

Log = Callable[[str], None]


@dataclass(frozen=True)
class RetrievalConfig:
    candidates: tuple[str, ...] = ("als", "bpr", "two_tower")
    valid_fraction: float = 0.1
    k: int = 50
    max_eval_users: int = 2000
    als: ALSConfig = ALSConfig(factors=64, regularization=70.0, alpha=3.0, iterations=15, use_values=True)
    bpr: BPRConfig = BPRConfig(factors=64, learning_rate=0.003, regularization=0.01, epochs=25)
    two_tower: TwoTowerConfig = TwoTowerConfig(epochs=3)
    seed: int = 0


@dataclass(frozen=True, eq=False)
class Selection:
    name: str
    reason: str
    scores: dict[str, dict[str, float]]  # model -> recall@k, ndcg@10, fit_seconds
    fit_model: FactorModel  # the winner fitted on the fit set
    fit: Interactions
    valid: Interactions
    cut_time: float
    extra: dict[str, str] = field(default_factory=dict)


LARGE = 300_000  # positive pairs above which the training budget per model shrinks


def for_size(cfg: RetrievalConfig, n_positives: int) -> RetrievalConfig:
    """Fewer sweeps on large data, so a 1M-event retrain stays within its 10-minute budget."""
    if n_positives <= LARGE:
        return cfg
    # the two-tower's full softmax over a 20k-item catalogue takes > 5 min per epoch on 2 cores: skipped
    return replace(cfg, als=replace(cfg.als, iterations=min(cfg.als.iterations, 5)),
                   bpr=replace(cfg.bpr, epochs=min(cfg.bpr.epochs, 4)),
                   candidates=tuple(c for c in cfg.candidates if c != "two_tower") or ("als",))


def build(name: str, data: TrainingData, cfg: RetrievalConfig) -> FactorModel:
    if name == "als":
        return ALS(cfg.als)
    if name == "bpr":
        return BPR(cfg.bpr)
    if name == "two_tower":
        return TwoTower(data.user_features, data.item_features, cfg.two_tower)
    raise ValueError(f"unknown retrieval model {name!r}: use als, bpr or two_tower")


def split_by_time(data: TrainingData, valid_fraction: float) -> tuple[Interactions, Interactions, float]:
    cut = time_cut(data, valid_fraction)
    early = data.times < cut
    if early.all() or not early.any():
        early = np.arange(len(data.times)) < int(len(data.times) * (1 - valid_fraction))
    return data.positives.subset(early), data.positives.subset(~early), cut


def validation_scores(model: FactorModel, fit: Interactions, valid: Interactions, users: np.ndarray, k: int) -> dict[str, float]:
    ranked = recommend(model.score, fit, users, k)
    relevant_by_user = valid.items_by_user()
    relevant = [relevant_by_user[u] for u in users]
    hits = hit_matrix(ranked, relevant)
    n_rel = np.array([len(r) for r in relevant], dtype=np.int64)
    return {f"recall@{k}": float(recall_at_k(hits, n_rel, k).mean()),
            "ndcg@10": float(ndcg_at_k(hits[:, :10], n_rel, 10).mean())}


def select(data: TrainingData, cfg: RetrievalConfig, log: Log = print, progress: bool = False) -> Selection:
    cfg = for_size(cfg, len(data.positives))
    fit, valid, cut = split_by_time(data, cfg.valid_fraction)
    users = np.flatnonzero(valid.user_counts() > 0).astype(np.int64)
    if len(users) > cfg.max_eval_users:
        users = np.sort(np.random.default_rng(cfg.seed).choice(users, cfg.max_eval_users, replace=False))
    scores: dict[str, dict[str, float]] = {}
    fitted: dict[str, FactorModel] = {}
    metric = f"recall@{cfg.k}"
    for name in cfg.candidates:
        t0 = time.perf_counter()
        model = build(name, data, cfg).fit(fit, progress=progress)
        seconds = time.perf_counter() - t0
        scores[name] = {**validation_scores(model, fit, valid, users, cfg.k), "fit_seconds": round(seconds, 2)}
        fitted[name] = model
        log(f"retrieval {name}: {metric}={scores[name][metric]:.4f} ndcg@10={scores[name]['ndcg@10']:.4f} "
            f"(fit {seconds:.1f}s)")
    best = max(scores, key=lambda n: (scores[n][metric], scores[n]["ndcg@10"]))
    others = ", ".join(f"{n} {scores[n][metric]:.4f}" for n in scores if n != best) or "no other candidate"
    reason = (f"{best} has the highest validation {metric} ({scores[best][metric]:.4f}; {others}) on the latest "
              f"{cfg.valid_fraction:.0%} of positives by event time, {len(users)} users")
    if len(data.positives) > LARGE:
        reason += f"; large data ({len(data.positives)} pairs > {LARGE}): fewer sweeps, two-tower skipped"
    return Selection(best, reason, scores, fitted[best], fit, valid, cut)


def fit_final(name: str, data: TrainingData, cfg: RetrievalConfig, progress: bool = False) -> FactorModel:
    """The chosen model refitted on every positive (what is published)."""
    return build(name, data, for_size(cfg, len(data.positives))).fit(data.positives, progress=progress)
