"""The "pipeline" entry of the offline eval: retrieval candidates -> LightGBM LambdaRank -> MMR.

1. Candidates: top ``n_candidates`` of the retrieval model chosen on validation (ALS).
2. Ranker: LightGBM LambdaRank, one query group per user, trained on the *training split
   only*: the training positives are split again (80/20, seed 2); retrieval models are
   fitted on the 80% part, candidates generated from it, and a candidate's label is 1 when
   it is among the user's 20% part.  Features: each retrieval model's score, the candidate's
   retrieval rank, item popularity, user activity and the user's genre affinity to the item.
3. MMR at lambda = 1 is pure relevance, i.e. the ranker order; so it is the identity here.

At test time the features come from the models that ``evaluate`` fitted on the full training split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True)
class PipelineConfig:
    retrieval: str = "als"  # best validation recall@10 among the retrieval models (offline/tune.py)
    feature_models: tuple[str, ...] = ("als", "ease", "bpr")
    n_candidates: int = 200
    n_estimators: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 31
    label_fraction: float = 0.2
    label_seed: int = 2
    seed: int = 0


def _fresh(name: str) -> Recommender:
    if name == "als":
        return ALS(ALS_CONFIG)
    if name == "ease":
        return EASE(EASE_CONFIG)
    if name == "bpr":
        return BPR(BPR_CONFIG)
    raise ValueError(f"unknown feature model {name!r}: use one of als, ease, bpr")


def features(
    models: Mapping[str, Recommender], names: tuple[str, ...], history: Interactions, genres: F32, users: I64, candidates: I64
) -> F32:
    """(len(users) * n_candidates, n_features) matrix, rows grouped by user."""
    n_users, n_cand = candidates.shape
    cols = [np.take_along_axis(models[n].score(users), candidates, axis=1) for n in names]
    rank = np.broadcast_to(np.arange(n_cand, dtype=np.float32), (n_users, n_cand))
    popularity = np.log1p(history.item_counts().astype(np.float32))[candidates]
    activity = np.broadcast_to(np.log1p(history.user_counts()[users].astype(np.float32))[:, None], (n_users, n_cand))
    profile = history.dense(binary=True)[users] @ genres  # genre counts of the user's history
    profile /= np.maximum(profile.sum(axis=1, keepdims=True), 1.0)
    item_g = genres / np.maximum(genres.sum(axis=1, keepdims=True), 1.0)
    affinity = np.einsum("ug,ucg->uc", profile, item_g[candidates])
    stacked = np.stack([*cols, rank, popularity, activity, affinity], axis=-1)
    return stacked.reshape(n_users * n_cand, -1).astype(np.float32)


def train_ranker(ctx: EvalContext, cfg: PipelineConfig) -> lgb.Booster:
    inner = validation_split(ctx.data.split.train, cfg.label_fraction, cfg.label_seed)
    models = {n: _fresh(n).fit(inner.train) for n in cfg.feature_models}
    users = np.flatnonzero(inner.test.user_counts() > 0).astype(np.int64)
    cands = recommend(models[cfg.retrieval].score, inner.train, users, cfg.n_candidates)
    label_items = inner.test.items_by_user()
    labels = np.stack([np.isin(row, label_items[u]) for u, row in zip(users, cands)]).astype(np.int32)
    x = features(models, cfg.feature_models, inner.train, ctx.item_features.genres, users, cands)
    params = {
        "objective": "lambdarank",
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "eval_at": [10],
        "seed": cfg.seed,
        "deterministic": True,
        "num_threads": 1,
        "verbosity": -1,
    }
    dataset = lgb.Dataset(x, labels.reshape(-1), group=[cands.shape[1]] * len(users))
    return lgb.train(params, dataset, num_boost_round=cfg.n_estimators)


def pipeline_entry(ctx: EvalContext, cfg: PipelineConfig = PipelineConfig()) -> Scorer:
    """Train the ranker on the training split; return a scorer over the full training-split models."""
    ranker = train_ranker(ctx, cfg)
    train = ctx.data.split.train
    models = {n: ctx.models[n] if n in ctx.models else _fresh(n).fit(train) for n in cfg.feature_models}

    def score(users: I64) -> F32:
        cands = recommend(models[cfg.retrieval].score, train, users, cfg.n_candidates)
        x = features(models, cfg.feature_models, train, ctx.item_features.genres, users, cands)
        relevance = np.asarray(ranker.predict(x), dtype=np.float32).reshape(cands.shape)
        out = np.full((len(users), train.n_items), -1e9, dtype=np.float32)
        np.put_along_axis(out, cands, relevance, axis=1)  # MMR(lambda=1) == relevance order
        return out

    return score
