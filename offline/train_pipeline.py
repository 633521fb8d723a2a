"""One training run: snapshot -> retrieval (selected) -> FAISS + vectors -> LambdaRank -> gate -> registry -> report.

Pure of I/O except through its parameters: the snapshot directory, the registry,
the run directory, an optional Redis client for the vectors, and ``now``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from offline import publish_vectors
from offline.artifacts import MODEL_FILE, unit, write_artifacts
from offline.dataset import TrainingData, load_training_data, time_cut
from offline.models.base import FactorModel
from offline.ranker_data import RankerData, RankerDataConfig, build_ranker_data
from offline.ranker_train import LambdaRankParams, TrainedRanker, train_lambdarank
from offline.ranking_metrics import ndcg_per_group, ndcg_report, paired_difference
from offline.registry import GATE_METRIC, GateDecision, ModelMeta, ModelRegistry, RegistryError, load_ranker, publish_and_gate
from offline.report import ReportInput, write_report
from offline.retrieval import RetrievalConfig, Selection, build, fit_final, for_size, select
from offline.snapshot import Snapshot

STAGES = ("load", "retrieval selection", "retrieval final fit", "ranker data", "ranker", "gate + registry",
          "vectors", "report")


@dataclass(frozen=True)
class TrainConfig:
    retrieval: RetrievalConfig = RetrievalConfig()
    ranker_data: RankerDataConfig = RankerDataConfig()
    # small trees: backfilled groups carry a weak signal beyond retrieval_score; on ML-100K (1,500 / 3,000
    # groups) 3-7-leaf trees beat 15- and 31-leaf ones on validation NDCG@10; 5 leaves keep ~15 of 16 scores
    # per group distinct (3 leaves: ~13)
    ranker: LambdaRankParams = LambdaRankParams(num_threads=1, num_boost_round=300, early_stopping_rounds=40,
                                               learning_rate=0.1, num_leaves=5, min_data_in_leaf=100,
                                               feature_fraction=0.8)
    gate_margin: float = 0.0
    min_rating: int = 3
    namespace: str = "sr"  # Redis namespace of the user vectors


@dataclass(frozen=True)
class TrainResult:
    version: str
    promoted: bool
    gate_reason: str
    metrics: dict[str, float]
    retrieval_model: str
    retrieval_reason: str
    report_path: Path
    log_path: Path
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    vectors_published: int = 0
    retrieval_order: dict[str, float] = field(default_factory=dict)  # the baseline on the same validation groups

    def summary(self) -> str:
        state = "promoted" if self.promoted else "NOT promoted"
        base = self.retrieval_order.get("ndcg@10")
        vs = "" if base is None else f" (retrieval order {base:.4f})"
        return (f"model {self.version} {state} ({self.gate_reason}); ndcg@5/10/20 = "
                f"{self.metrics['ndcg@5']:.4f}/{self.metrics['ndcg@10']:.4f}/{self.metrics['ndcg@20']:.4f}{vs}; "
                f"retrieval {self.retrieval_model}; {self.seconds:.1f}s; report {self.report_path}")


def _fmt(m: dict[str, float]) -> str:
    return "/".join(f"{m[k]:.4f}" for k in ("ndcg@5", "ndcg@10", "ndcg@20"))


def tied_group_share(scores: np.ndarray, group_ids: np.ndarray) -> float:
    """Share of groups (with 2+ rows) in which every row gets the same score: a ranker that ranks nothing."""
    scores, group_ids = np.asarray(scores, np.float64), np.asarray(group_ids)
    order = np.lexsort((scores, group_ids))
    g, sc = group_ids[order], scores[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ends = np.r_[starts[1:], g.size]
    multi = [(a, b) for a, b in zip(starts, ends) if b - a > 1]
    if not multi:
        return 0.0
    return float(np.mean([np.ptp(sc[a:b]) <= 1e-12 for a, b in multi]))


def baseline_check(candidate: dict[str, float], retrieval_order: dict[str, float], tied_share: float,
                   metric: str = GATE_METRIC) -> str | None:
    """Why the candidate must not be promoted (None when it may be): it must rank at least as well as
    the retrieval order on the same validation groups, and actually rank (not tie most groups)."""
    cand, base = candidate.get(metric, float("nan")), retrieval_order.get(metric, float("nan"))
    if tied_share > 0.5:
        return f"the ranker gives every candidate the same score in {tied_share:.0%} of validation groups"
    if base == base and not cand >= base:  # NaN candidate fails too
        return f"ranker {metric}={cand:.4f} is below the retrieval order's {base:.4f} on the same validation groups"
    return None


POPULARITY_FILE = "item_popularity.npy"  # = serving.item_index.POPULARITY_FILE


def write_popularity(directory: Path, items: np.ndarray, n_items: int) -> Path:
    """``item_popularity.npy``: float32 (n_items,), positives per item over the whole training data, in
    ``item_ids.json`` order: the long-window popularity behind serving's ``popular`` source and cold start."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / POPULARITY_FILE
    np.save(path, np.bincount(np.asarray(items, np.int64), minlength=n_items).astype(np.float32),
            allow_pickle=False)
    return path


def ranker_retrieval(data: TrainingData, sel: Selection, cfg: TrainConfig, log: Any) -> tuple[FactorModel, float]:
    """The retrieval model behind the ranker's groups and the time their positives start: the selection's
    fit-set model and validation cut, or (``ranker_data.holdout_fraction``) the selected kind refitted on the
    positives before the latest ``holdout_fraction`` of them, so that groups span more users."""
    frac = cfg.ranker_data.holdout_fraction
    if frac is None:
        return sel.fit_model, sel.cut_time
    if not 0.0 < frac < 1.0:
        raise ValueError(f"ranker_data.holdout_fraction must be in (0, 1), got {frac}")
    cut = time_cut(data, frac)
    early = data.times < cut
    model = build(sel.name, data, for_size(cfg.retrieval, len(data.positives))).fit(data.positives.subset(early))
    log(f"ranker groups: {sel.name} refitted on the {int(early.sum())} positives before the latest {frac:.0%} "
        f"(t={cut:.0f}); groups from the {int((~early).sum())} after it")
    return model, cut


def _run_logger(path: Path) -> logging.Logger:
    logger = logging.getLogger(f"streamrec.train.{path.parent.name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger.handlers = [handler]
    return logger


def _current_on_valid(registry: ModelRegistry, rd: RankerData, tr: TrainedRanker) -> dict[str, float] | None:
    """The current model scored on the candidate's validation groups (None if it cannot be)."""
    cur = registry.current()
    if cur is None:
        return None
    try:
        ranker = load_ranker(registry, cur)
    except (RegistryError, OSError, ValueError):
        return None
    where = {n: k for k, n in enumerate(rd.feature_names)}
    if any(n not in where for n in ranker.feature_names):
        return None
    va = tr.valid_rows
    X = rd.X[va][:, [where[n] for n in ranker.feature_names]].astype(np.float64)
    return ndcg_report(ranker.score(X), rd.y[va], rd.group_ids[va])


def train_once(snap: Snapshot, registry: ModelRegistry, run_dir: Path, now: datetime, cfg: TrainConfig = TrainConfig(),
               redis_client: Any = None, progress: bool = True) -> TrainResult:
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "train.log"
    logger = _run_logger(log_path)

    def log(msg: str) -> None:
        logger.info(msg)
        if progress:
            tqdm.write(msg)

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    bar = tqdm(total=len(STAGES), desc="train", unit="stage", disable=not progress)

    def stage(name: str, start: float) -> float:
        timings[name] = round(time.perf_counter() - start, 2)
        bar.update(1)
        bar.set_postfix_str(name)
        return time.perf_counter()

    s = time.perf_counter()
    log(f"snapshot {snap.directory}: {snap.n_events} events, {snap.n_examples} examples, "
        f"{snap.data_start.isoformat()} .. {snap.data_end.isoformat()}")
    data = load_training_data(snap, cfg.min_rating)
    log(f"data: {len(data.user_ids)} users, {len(data.item_ids)} items, {len(data.positives)} positive pairs")
    s = stage("load", s)
    sel = select(data, cfg.retrieval, log=log)
    log(f"retrieval selected: {sel.reason}")
    s = stage("retrieval selection", s)
    final = fit_final(sel.name, data, cfg.retrieval)
    s = stage("retrieval final fit", s)
    ranker_model, ranker_cut = ranker_retrieval(data, sel, cfg, log)
    rd = build_ranker_data(snap, data, ranker_model, ranker_cut, cfg.ranker_data, progress=progress)
    log(f"ranker data: {rd.X.shape[0]} rows, {rd.n_impression_groups} impression groups (training only), "
        f"{rd.n_backfill_groups} backfilled groups (point-in-time features; positive + hard negatives from the "
        f"retrieval top {cfg.ranker_data.candidate_k} + random items; {rd.n_not_retrieved} positives outside "
        f"the top {cfg.ranker_data.candidate_k} skipped), {len(rd.feature_names)} features")
    s = stage("ranker data", s)
    tr = train_lambdarank(rd.X, rd.y, rd.group_ids, rd.times, rd.feature_names, cfg.ranker, rd.valid_eligible)
    va = tr.valid_rows
    retrieval_order = ndcg_report(rd.X[va, rd.feature_names.index("retrieval_score")], rd.y[va], rd.group_ids[va])
    valid_scores = np.asarray(tr.booster.predict(rd.X[va], num_iteration=tr.best_iteration))
    tied = tied_group_share(valid_scores, rd.group_ids[va])
    log(f"ranker: best round {tr.best_iteration}, validation ndcg@5/10/20 {_fmt(tr.metrics)} vs retrieval order "
        f"{_fmt(retrieval_order)} on the same groups; {tied:.0%} of validation groups with all-equal scores; "
        f"{tr.n_train_groups} train / {tr.n_valid_groups} validation groups (split at t={tr.split_time:.0f})")
    diff, lo, hi = paired_difference(ndcg_per_group(valid_scores, rd.y[va], rd.group_ids[va], 10),
                                     ndcg_per_group(rd.X[va, rd.feature_names.index("retrieval_score")], rd.y[va],
                                                    rd.group_ids[va], 10))
    log(f"ranker: NDCG@10 minus retrieval order's, per validation group: {diff:+.4f} (bootstrap 95% interval "
        f"{lo:+.4f} .. {hi:+.4f}{'; not distinguishable from retrieval order' if lo <= 0.0 <= hi else ''})")
    refusal = baseline_check(tr.metrics, retrieval_order, tied)
    if refusal:
        log(f"ranker: WARNING {refusal}")
    s = stage("ranker", s)
    current = _current_on_valid(registry, rd, tr)
    files = write_artifacts(run_dir / "artifacts", tr.model_text(), final, data.item_ids, data.user_ids)
    files[POPULARITY_FILE] = write_popularity(run_dir / "artifacts", data.positives.items, len(data.item_ids))
    metrics = {**tr.metrics, **{f"retrieval_{k}": v for k, v in sel.scores[sel.name].items() if k != "fit_seconds"},
               **{f"retrieval_order_{k}": v for k, v in retrieval_order.items()}, "tied_group_share": tied,
               "ndcg@10_minus_retrieval_order": diff, "ndcg@10_minus_retrieval_order_ci_low": lo,
               "ndcg@10_minus_retrieval_order_ci_high": hi}
    meta = ModelMeta(
        metrics=metrics, feature_names=rd.feature_names, data_start=data.data_start, data_end=data.data_end,
        trained_at=now, training_seconds=round(time.perf_counter() - t0, 2), model_file=MODEL_FILE,
        notes={"retrieval_model": sel.name, "retrieval_selection": sel.reason, "run_dir": str(run_dir),
               "groups": f"{rd.n_impression_groups} impression + {rd.n_backfill_groups} backfilled",
               "vector_dim": str(final.item_vectors().shape[1])},
    )
    if refusal is None:
        version, decision = publish_and_gate(registry, files, meta, now, cfg.gate_margin, current)
        decision = GateDecision(decision.promote, f"beats retrieval order ({tr.metrics[GATE_METRIC]:.4f} >= "
                                f"{retrieval_order[GATE_METRIC]:.4f}); {decision.reason}")
    else:  # published for inspection, never promoted: serving keeps the current model or its heuristic
        version = registry.publish(files, meta, now)
        keeps = f"current model {registry.current()} stays" if registry.current() else \
            "no current model: serving keeps its heuristic ranker"
        decision = GateDecision(False, f"{refusal}; published, not promoted; {keeps}")
    log(f"registry: published {version}; gate: {decision.reason}")
    s = stage("gate + registry", s)
    n_vec = _publish_vectors(redis_client, version, decision, final, data, cfg, log)
    s = stage("vectors", s)
    seconds = round(time.perf_counter() - t0, 2)
    ranker_rows = {"candidate": tr.metrics, "retrieval order": retrieval_order}
    if current is not None:
        ranker_rows["current model"] = current
    report = write_report(ReportInput(
        title=f"streamrec training run {run_dir.name}",
        summary={"version": version, "promoted": decision.promote, "gate": decision.reason,
                 "retrieval model": sel.name, "why": sel.reason, "data range": f"{data.data_start} .. {data.data_end}",
                 "groups": meta.notes["groups"], "seconds": seconds, "stage seconds": timings, "log": str(log_path)},
        curves=tr.curves, best_iteration=tr.best_iteration, retrieval_scores=sel.scores, ranker_metrics=ranker_rows,
        importance=tr.feature_importance["gain"],
        valid_scores=valid_scores, valid_labels=rd.y[va],
    ), run_dir)
    stage("report", s)
    bar.close()
    log(f"report: {report}")
    return TrainResult(version, decision.promote, decision.reason, metrics, sel.name, sel.reason, report, log_path,
                       seconds, timings, n_vec, retrieval_order)


def _publish_vectors(client: Any, version: str, decision: GateDecision, model: Any, data: Any, cfg: TrainConfig,
                     log: Any) -> int:
    if client is None:
        log("vectors: no Redis client given; not published (serving reads them from the registry version)")
        return 0
    items, users = unit(model.item_vectors()), unit(model.user_vectors())
    ns = publish_vectors.live_namespace(client, cfg.namespace)
    n = publish_vectors.publish(client, version, ns, data.item_ids, items, data.user_ids, users)
    if decision.promote:
        publish_vectors.activate(client, version, items.shape[1])
    log(f"vectors: {n} published under version {version}" + ("; fold-in now uses it" if decision.promote else ""))
    return n
