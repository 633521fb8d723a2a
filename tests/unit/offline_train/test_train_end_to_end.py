"""`streamrec train` end to end on a small synthetic slice (no broker: a snapshot directory),
then the registry commands: the gate, list, rollback, and a corrupt artifact refused."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from offline.registry import ModelRegistry
from offline.synthetic import SyntheticConfig, generate
from streamrec import cli
from streamrec.settings import get_settings

END = datetime(2024, 3, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("snap")
    generate(out, SyntheticConfig(events=4000, users=60, items=150, n_clusters=4, days=10), END)
    return out


@pytest.fixture()
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STREAMREC_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    yield tmp_path / "state"
    get_settings.cache_clear()


def test_train_publishes_a_promoted_model_with_report_and_artifacts(
        snapshot: Path, state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "--source", str(snapshot)]) == 0
    out = capsys.readouterr().out
    report = Path(out.split("report: ")[-1].strip())
    assert report.is_file() and report.name == "report.html"
    html = report.read_text()
    for png in ("curves.png", "ndcg_by_model.png", "feature_importance.png", "score_distribution.png"):
        assert png in html and (report.parent / png).stat().st_size > 1000
    reg = ModelRegistry(state / "models")
    version = reg.current()
    assert version is not None and "promoted" in out
    m = reg.verify(version)
    assert {"ndcg@5", "ndcg@10", "ndcg@20"} <= m.metrics.keys()
    assert m.feature_names[-2:] == ["retrieval_score", "popularity_prior_by_item"] and len(m.feature_names) > 40
    assert m.notes["retrieval_model"] in m.notes["retrieval_selection"]
    vdir = reg.versions_dir / version
    assert set(m.files) >= {"model.txt", "retrieval.pt", "items.faiss", "item_vectors.npy", "item_ids.json",
                            "item_popularity.npy"}
    vectors = np.load(vdir / "item_vectors.npy", allow_pickle=False)
    assert vectors.shape[0] == len(json.loads((vdir / "item_ids.json").read_text())) == 150
    assert (report.parent / "train.log").read_text().count("gate:") == 1


def test_gate_rollback_and_corrupt_artifact(snapshot: Path, state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "--source", str(snapshot)]) == 0
    reg = ModelRegistry(state / "models")
    first = reg.current()
    assert first is not None
    # a second run on the same data: scored against the current model on the same validation groups
    get_settings.cache_clear()
    import os
    os.environ["STREAMREC_TRAIN_GATE_MARGIN"] = "0.5"  # impossible margin: the gate must refuse
    try:
        assert cli.main(["train", "--source", str(snapshot)]) == 0
    finally:
        del os.environ["STREAMREC_TRAIN_GATE_MARGIN"]
    out = capsys.readouterr().out
    assert "NOT promoted" in out and "current model stays" in out
    versions = reg.list_versions()
    assert len(versions) == 2 and reg.current() == first
    second = [v for v in versions if v != first][0]
    # promote by hand, then roll back
    assert cli.main(["models", "promote", second]) == 0
    assert reg.current() == second
    assert cli.main(["models", "rollback"]) == 0
    assert reg.current() == first
    assert cli.main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert f"* {first}" in listing and f"  {second}" in listing
    # damage the second version's model: promotion is refused with a clear message
    (reg.versions_dir / second / "model.txt").write_text("tree\n")
    assert cli.main(["models", "promote", second]) == 2
    assert "will not be promoted" in capsys.readouterr().err
    assert reg.current() == first


def test_ranker_below_retrieval_order_is_published_but_not_promoted(
        snapshot: Path, state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from offline import train_pipeline
    seen: list[dict[str, float]] = []

    def worse(candidate: dict[str, float], retrieval_order: dict[str, float], tied: float) -> str | None:
        seen.append(retrieval_order)
        return "ranker ndcg@10=0.5060 is below the retrieval order's 0.5270 on the same validation groups"

    monkeypatch.setattr(train_pipeline, "baseline_check", worse)
    assert cli.main(["train", "--source", str(snapshot)]) == 0
    out = capsys.readouterr().out
    assert seen and {"ndcg@5", "ndcg@10", "ndcg@20"} <= seen[0].keys()
    assert "NOT promoted" in out and "below the retrieval order" in out and "serving keeps its heuristic" in out
    reg = ModelRegistry(state / "models")
    assert reg.current() is None and len(reg.list_versions()) == 1
    m = reg.verify(reg.list_versions()[0])
    assert "retrieval_order_ndcg@10" in m.metrics and "tied_group_share" in m.metrics


def test_demo_summary_shows_ranker_vs_retrieval_order_and_the_decision() -> None:
    from offline.train_demo import demo_summary
    from offline.train_pipeline import TrainResult
    r = TrainResult("v1", False, "ranker ndcg@10=0.5060 is below the retrieval order's 0.5270; published, not promoted",
                    {"ndcg@5": 0.45, "ndcg@10": 0.506, "ndcg@20": 0.55}, "bpr", "why", Path("r.html"), Path("t.log"),
                    12.0, retrieval_order={"ndcg@10": 0.527})
    line = demo_summary(r)
    assert "0.5060 vs retrieval order 0.5270" in line and "NOT promoted" in line and "below the retrieval order" in line
    assert "\n" not in line


def test_ranker_groups_from_a_holdout_period_sampled_uniformly(snapshot: Path) -> None:
    from dataclasses import replace

    from offline.dataset import load_training_data, time_cut
    from offline.models.als import ALSConfig
    from offline.ranker_data import RankerDataConfig, build_ranker_data
    from offline.retrieval import RetrievalConfig, select
    from offline.snapshot import open_snapshot
    from offline.train_pipeline import TrainConfig, ranker_retrieval

    snap = open_snapshot(snapshot)
    data = load_training_data(snap)
    small = ALSConfig(factors=8, regularization=10.0, alpha=3.0, iterations=3, use_values=True)  # cheap fits
    base = TrainConfig(retrieval=RetrievalConfig(candidates=("als",), als=small))
    sel = select(data, base.retrieval, log=lambda _: None)
    same = ranker_retrieval(data, sel, base, lambda _: None)  # default: the selection's own model and cut
    assert same[0] is sel.fit_model and same[1] == sel.cut_time
    mix = replace(base.ranker_data, n_hard_negatives=150, n_popular_negatives=100, max_backfill_groups=25)
    uniform = replace(base, ranker_data=replace(mix, holdout_fraction=0.5, sampling="uniform"))
    said: list[str] = []
    model, cut = ranker_retrieval(data, sel, uniform, said.append)
    assert len(said) == 1 and "before the latest 50%" in said[0]
    assert cut == time_cut(data, 0.5) and cut < sel.cut_time and model is not sel.fit_model
    rd_u = build_ranker_data(snap, data, model, cut, uniform.ranker_data)
    rd_l = build_ranker_data(snap, data, model, cut, replace(uniform.ranker_data, sampling="latest"))
    for rd in (rd_u, rd_l):
        assert rd.times.min() >= cut and rd.valid_eligible is not None and rd.valid_eligible.all()
        assert 0 < rd.n_backfill_groups <= 25
    # the uniform sample reaches back into the period; the latest positives do not
    assert rd_u.times.min() < rd_l.times.min()
    # a group holds the positive and (nearly) the whole candidate mix, not a 23-row sample
    assert rd_u.X.shape[0] / rd_u.n_backfill_groups > 100
    with pytest.raises(ValueError, match="sampling"):
        build_ranker_data(snap, data, model, cut, replace(mix, sampling="random"))
    with pytest.raises(ValueError, match="holdout_fraction"):
        ranker_retrieval(data, sel, replace(base, ranker_data=RankerDataConfig(holdout_fraction=1.5)), lambda _: None)


def test_impression_groups_are_capped_to_the_latest() -> None:
    from offline.ranker_data import _latest_groups

    X = [np.array([float(k)]) for k in range(6)]
    got = _latest_groups(X, [1, 0, 1, 1, 0, 1], ["a", "a", "b", "c", "c", "d"], [5.0, 9.0, 1.0, 7.0, 8.0, 2.0], 2)
    assert got[2] == ["a", "a", "c", "c"] and [x[0] for x in got[0]] == [0.0, 1.0, 3.0, 4.0]
    assert _latest_groups(X, [1] * 6, ["a"] * 6, [0.0] * 6, 0) == ([], [], [], [])
