"""The HTML report of one training run, with PNG plots (matplotlib, Agg backend).

Plots: ranker training curves (train/valid NDCG@10 per round), NDCG by model
(retrieval candidates' validation NDCG@10 and recall; the ranker's NDCG@5/10/20
next to the retrieval order and the current model), feature importance (gain,
top 20) and score distributions (validation scores of relevant vs other rows).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


@dataclass(frozen=True, eq=False)
class ReportInput:
    title: str
    summary: Mapping[str, Any]  # shown as a table: version, gate, data range, timings
    curves: Mapping[str, Mapping[str, list[float]]]  # {"train"|"valid": {"ndcg@10": [...]}}
    best_iteration: int
    retrieval_scores: Mapping[str, Mapping[str, float]]  # model -> metrics
    ranker_metrics: Mapping[str, Mapping[str, float]]  # "candidate"/"retrieval order"/"current" -> ndcg@k
    importance: Mapping[str, float]  # gain
    valid_scores: np.ndarray
    valid_labels: np.ndarray


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


def _curves(r: ReportInput, out: Path) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for ds, per in r.curves.items():
        if "ndcg@10" in per:
            ax.plot(np.arange(1, len(per["ndcg@10"]) + 1), per["ndcg@10"], label=f"{ds} ndcg@10")
    ax.axvline(r.best_iteration, color="grey", linestyle="--", label=f"best round {r.best_iteration}")
    ax.set_xlabel("boosting round")
    ax.set_ylabel("NDCG@10")
    ax.set_title("LambdaRank training curves")
    ax.legend()
    return _save(fig, out / "curves.png")


def _ndcg_by_model(r: ReportInput, out: Path) -> str:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    names = list(r.retrieval_scores)
    metrics = sorted({m for v in r.retrieval_scores.values() for m in v if m != "fit_seconds"})
    width = 0.8 / max(len(metrics), 1)
    for k, m in enumerate(metrics):
        a1.bar(np.arange(len(names)) + k * width, [r.retrieval_scores[n].get(m, 0) for n in names], width, label=m)
    a1.set_xticks(np.arange(len(names)) + width * (len(metrics) - 1) / 2, names)
    a1.set_title("retrieval models (time-based validation)")
    a1.legend()
    rows = list(r.ranker_metrics)
    ks = ["ndcg@5", "ndcg@10", "ndcg@20"]
    width = 0.8 / max(len(rows), 1)
    for j, row in enumerate(rows):
        a2.bar(np.arange(len(ks)) + j * width, [r.ranker_metrics[row].get(k, 0) for k in ks], width, label=row)
    a2.set_xticks(np.arange(len(ks)) + width * (len(rows) - 1) / 2, ks)
    a2.set_title("ranker on validation groups")
    a2.legend()
    return _save(fig, out / "ndcg_by_model.png")


def _importance(r: ReportInput, out: Path) -> str:
    top = sorted(r.importance.items(), key=lambda kv: -kv[1])[:20][::-1]
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.barh([k for k, _ in top], [v for _, v in top])
    ax.set_title("feature importance (gain), top 20")
    ax.tick_params(axis="y", labelsize=7)
    return _save(fig, out / "feature_importance.png")


def _scores(r: ReportInput, out: Path) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    pos = r.valid_labels > 0
    bins = np.linspace(float(r.valid_scores.min(initial=0)), float(r.valid_scores.max(initial=1)) + 1e-9, 40)
    ax.hist(r.valid_scores[~pos], bins=bins, alpha=0.6, density=True, label="label 0")
    ax.hist(r.valid_scores[pos], bins=bins, alpha=0.6, density=True, label="label > 0")
    ax.set_title("ranker score distribution (validation)")
    ax.legend()
    return _save(fig, out / "score_distribution.png")


def _table(d: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(v if isinstance(v, str) else json.dumps(v))}</td></tr>"
                   for k, v in d.items())
    return f"<table>{rows}</table>"


def write_report(r: ReportInput, out_dir: Path) -> Path:
    """Write ``report.html`` and its PNGs into ``out_dir``; returns the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = [_curves(r, out_dir), _ndcg_by_model(r, out_dir), _importance(r, out_dir), _scores(r, out_dir)]
    body = [f"<h1>{html.escape(r.title)}</h1>", _table(r.summary), "<h2>Retrieval models</h2>",
            _table({n: {k: round(v, 4) for k, v in m.items()} for n, m in r.retrieval_scores.items()}),
            "<h2>Ranker</h2>", _table({n: {k: round(v, 4) for k, v in m.items()} for n, m in r.ranker_metrics.items()})]
    body += [f'<h2>{html.escape(Path(i).stem.replace("_", " "))}</h2><img src="{i}">' for i in images]
    style = "body{font-family:sans-serif;max-width:1000px}th{text-align:left;padding-right:1em}td{font-family:monospace}"
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(r.title)}</title>" \
           f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
