"""The "pipeline" entry of the offline eval: retrieval candidates -> LightGBM LambdaRank -> MMR.

1. Candidates: top ``n_candidates`` of the retrieval model (EASE: best validation
   recall@10 / NDCG@10 on the train-only validation split, see ``offline/tune.py``).
2. Ranker: LightGBM LambdaRank, one query group per user, trained on the *training split
   only*: the training positives are split again (80/20, seed 2); retrieval models are
   fitted on the 80% part, candidates generated from it, and a candidate's label is 1 when
   it is among the user's 20% part.  Users are split 80/20 (seed 3) into ranker-train and
   ranker-validation groups; training stops early on validation NDCG@10.
   Features: each model's raw score, its score relative to the user's best candidate and
   its within-user rank (scale-free, so a ranker trained on 64% of the data transfers to
   models fitted on 80%), the retrieval rank, item popularity, user activity and the
   user's genre affinity to the item.
3. Honest fallback: the ranker is used only when its validation NDCG@10 beats the
   retrieval order's on the same validation groups; otherwise the pipeline keeps the
   retrieval order (recorded in ``LAST_DECISION``).
4. MMR at lambda = 1 is pure relevance, i.e. the ranker order; so it is the identity here.

At test time the features come from the models that ``evaluate`` fitted on the full training split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from offline.eval_offline import ALS_CONFIG, BPR_CONFIG, EASE_CONFIG, EvalContext
from offline.evaluator import Scorer, recommend
from offline.interactions import Interactions
from offline.models.als import ALS
from offline.models.base import Recommender
from offline.models.bpr import BPR
from offline.models.ease import EASE
from offline.split import validation_split

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

LAST_DECISION: dict[str, Any] = {}


@dataclass(frozen=True)
class PipelineConfig:
    retrieval: str = "ease"
    feature_models: tuple[str, ...] = ("ease", "als")
    n_candidates: int = 100
    num_boost_round: int = 400
    early_stopping_rounds: int = 40
    learning_rate: float = 0.03
    num_leaves: int = 15
    min_data_in_leaf: int = 50
    label_fraction: float = 0.2
    label_seed: int = 2
    valid_users_fraction: float = 0.2
    valid_seed: int = 3
    seed: int = 0


def _fresh(name: str) -> Recommender:
    if name == "als":
        return ALS(ALS_CONFIG)
    if name == "ease":
        return EASE(EASE_CONFIG)
    if name == "bpr":
        return BPR(BPR_CONFIG)
    raise ValueError(f"unknown feature model {name!r}: use one of als, ease, bpr")


def feature_names(names: tuple[str, ...]) -> list[str]:
    per_model = [f"{n}_{kind}" for n in names for kind in ("score", "rel", "rank")]
    return per_model + ["retrieval_rank", "item_popularity", "user_activity", "genre_affinity"]


def features(
    models: Mapping[str, Recommender], names: tuple[str, ...], history: Interactions, genres: F32, users: I64, candidates: I64
) -> F32:
    """(len(users) * n_candidates, n_features) matrix, rows grouped by user."""
    n_users, n_cand = candidates.shape
    cols = []
    for n in names:
        full = models[n].score(users)
        s = np.take_along_axis(full, candidates, axis=1)
        top = np.max(s, axis=1, keepdims=True)
        rank = np.argsort(np.argsort(-s, axis=1, kind="stable"), axis=1).astype(np.float32)
        cols += [s, s / np.where(np.abs(top) > 1e-12, np.abs(top), 1.0), rank]
    rank = np.broadcast_to(np.arange(n_cand, dtype=np.float32), (n_users, n_cand))
    popularity = np.log1p(history.item_counts().astype(np.float32))[candidates]
    activity = np.broadcast_to(np.log1p(history.user_counts()[users].astype(np.float32))[:, None], (n_users, n_cand))
    profile = history.dense(binary=True)[users] @ genres  # genre counts of the user's history
    profile /= np.maximum(profile.sum(axis=1, keepdims=True), 1.0)
    item_g = genres / np.maximum(genres.sum(axis=1, keepdims=True), 1.0)
    affinity = np.einsum("ug,ucg->uc", profile, item_g[candidates])
    stacked = np.stack([*cols, rank, popularity, activity, affinity], axis=-1)
    return stacked.reshape(n_users * n_cand, -1).astype(np.float32)


def _ndcg10(scores: F32, labels: npt.NDArray[np.int32]) -> float:
    """Mean binary NDCG@10 over groups with at least one positive (rows = groups)."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    gains = np.take_along_axis(labels, order, axis=1)
    disc = 1.0 / np.log2(np.arange(2, 12))
    dcg = (gains * disc[: gains.shape[1]]).sum(axis=1)
    n_pos = np.minimum(labels.sum(axis=1), 10)
    idcg = np.array([disc[:k].sum() for k in n_pos])
    keep = n_pos > 0
    return float(np.mean(dcg[keep] / idcg[keep])) if keep.any() else float("nan")


def train_ranker(ctx: EvalContext, cfg: PipelineConfig) -> lgb.Booster | None:
    """The ranker, or None when it does not beat the retrieval order on its validation users."""
    inner = validation_split(ctx.data.split.train, cfg.label_fraction, cfg.label_seed)
    models = {n: _fresh(n).fit(inner.train) for n in set(cfg.feature_models) | {cfg.retrieval}}
    users = np.flatnonzero(inner.test.user_counts() > 0).astype(np.int64)
    cands = recommend(models[cfg.retrieval].score, inner.train, users, cfg.n_candidates)
    label_items = inner.test.items_by_user()
    labels = np.stack([np.isin(row, label_items[u]) for u, row in zip(users, cands)]).astype(np.int32)
    x = features(models, cfg.feature_models, inner.train, ctx.item_features.genres, users, cands)
    x = x.reshape(len(users), cfg.n_candidates, -1)
    is_valid = np.random.default_rng(cfg.valid_seed).random(len(users)) < cfg.valid_users_fraction
    tr, va = np.flatnonzero(~is_valid), np.flatnonzero(is_valid)
    n_f = x.shape[-1]
    names = feature_names(cfg.feature_models)
    params = {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [10],
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "lambdarank_truncation_level": 20,
        "seed": cfg.seed,
        "deterministic": True,
        "num_threads": 1,
        "verbosity": -1,
    }
    train_set = lgb.Dataset(x[tr].reshape(-1, n_f), labels[tr].reshape(-1), group=[cfg.n_candidates] * len(tr), feature_name=names)
    valid_set = lgb.Dataset(x[va].reshape(-1, n_f), labels[va].reshape(-1), group=[cfg.n_candidates] * len(va), reference=train_set)
    booster = lgb.train(
        params, train_set, num_boost_round=cfg.num_boost_round, valid_sets=[valid_set], valid_names=["valid"],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, first_metric_only=True, verbose=False)],
    )
    pred = np.asarray(booster.predict(x[va].reshape(-1, n_f), num_iteration=booster.best_iteration), dtype=np.float32)
    ranker_ndcg = _ndcg10(pred.reshape(len(va), -1), labels[va])
    retrieval_ndcg = _ndcg10(-np.broadcast_to(np.arange(cfg.n_candidates, dtype=np.float32), (len(va), cfg.n_candidates)), labels[va])
    use = ranker_ndcg > retrieval_ndcg
    LAST_DECISION.clear()
    LAST_DECISION.update(
        ranker_valid_ndcg10=round(ranker_ndcg, 4),
        retrieval_valid_ndcg10=round(retrieval_ndcg, 4),
        best_iteration=int(booster.best_iteration),
        used="ranker" if use else "retrieval order (ranker did not beat it on validation)",
    )
    return booster if use else None


def pipeline_entry(ctx: EvalContext, cfg: PipelineConfig = PipelineConfig()) -> Scorer:
    """Train the ranker on the training split; return a scorer over the full training-split models."""
    ranker = train_ranker(ctx, cfg)
    train = ctx.data.split.train
    needed = set(cfg.feature_models) | {cfg.retrieval}
    models = {n: ctx.models[n] if n in ctx.models else _fresh(n).fit(train) for n in needed}

    def score(users: I64) -> F32:
        cands = recommend(models[cfg.retrieval].score, train, users, cfg.n_candidates)
        if ranker is None:
            relevance = -np.broadcast_to(np.arange(cfg.n_candidates, dtype=np.float32), cands.shape)
        else:
            x = features(models, cfg.feature_models, train, ctx.item_features.genres, users, cands)
            pred = ranker.predict(x, num_iteration=ranker.best_iteration)
            relevance = np.asarray(pred, dtype=np.float32).reshape(cands.shape)
        out = np.full((len(users), train.n_items), -1e9, dtype=np.float32)
        np.put_along_axis(out, cands, relevance, axis=1)  # MMR(lambda=1) == relevance order
        return out

    return score
