"""Learning curves (pipeline/curves.py → reports/learning/<ds>/points.json → the report's section and
reports/learning_curves/ CSVs): stratified, seeded, nested shares; one point per (model, share); a fit
on a share without some classes; the whole-train point taken from the benchmark's own run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import base_params, edit_params
from pipeline import paths
from pipeline.artifacts import LearningPoints
from pipeline.config import CurvesConfig, config_from_dict, load_config
from pipeline.curves import build_curves, stratified_rows
from pipeline.errors import TextbenchError
from pipeline.train.stage import fit_model, train
from test_train import bert_dir  # noqa: F401 (the fixture)
from train_fixtures import LABELS, write_toy_project

FRACTIONS = [0.1, 0.5, 1.0]
MODELS = ["tfidf_svm", "fasttext", "bert_fnn"]  # sparse, vocab ids, a pooled head on frozen features


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shares_are_stratified_seeded_nested_and_keep_every_class(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 200, size=7)  # imbalanced, one class may hold a single document
    labels = rng.permutation(np.repeat(np.arange(7), sizes))
    ids = [f"doc-{i:05d}" for i in rng.permutation(len(labels))]
    previous: set[int] = set()
    for f in (0.01, 0.03, 0.1, 0.3, 1.0):
        rows = stratified_rows(ids, labels, f, 42)
        counts = np.bincount(labels[rows], minlength=7)
        assert (counts == np.maximum(1, np.ceil(f * sizes))).all()  # stratified, every class kept
        assert previous <= set(rows.tolist())  # a larger share holds the smaller one
        previous = set(rows.tolist())
        assert np.array_equal(rows, stratified_rows(ids, labels, f, 42))  # same seed, same documents
        order = rng.permutation(len(ids))  # the same documents in another order: the same share
        again = stratified_rows([ids[i] for i in order], labels[order], f, 42)
        assert {ids[order[i]] for i in again} == {ids[i] for i in rows}
    assert len(previous) == len(labels)
    picks = {tuple(stratified_rows(ids, labels, 0.1, s)) for s in range(5)}
    assert len(picks) > 1  # the seed chooses the documents


def test_multi_label_shares_are_stratified_by_the_rarest_label() -> None:
    labels = np.zeros((300, 3), np.float32)
    labels[:, 0] = 1  # on every document
    labels[:150, 1] = 1
    labels[:3, 2] = 1  # rare: only reachable through its own stratum
    rows = stratified_rows([str(i) for i in range(300)], labels, 0.01, 7)
    assert labels[rows, 2].sum() >= 1 and labels[rows, 1].sum() >= 1


@pytest.mark.parametrize(
    "curves, key",
    [
        ({"fractions": [0.0, 0.5]}, r"curves\.fractions\.0"),
        ({"fractions": [0.5, 1.5]}, r"curves\.fractions\.1"),
        ({"fractions": [0.1, 0.1]}, r"curves\.fractions: .*repeat"),
        ({"models": ["tfidf_svm", "tfidf_smv"]}, r"curves\.models: 'tfidf_smv' is not a registered model"),
        ({"models": ["fasttext", "fasttext"]}, r"curves\.models: .*repeat"),
    ],
)
def test_settings_that_cannot_be_a_curve_are_refused_at_load(curves: dict, key: str) -> None:
    with pytest.raises(TextbenchError, match=key):
        config_from_dict(base_params() | {"curves": curves})


@pytest.fixture
def toy(project: Path, bert_dir: Path) -> Path:  # noqa: F811 (test_train's fixture)
    write_toy_project(project, bert_dir)

    def curves(p: dict) -> None:
        p["benchmark"] |= {"datasets": ["toy"], "models": ["tfidf_svm"]}
        p["curves"] = {"fractions": FRACTIONS, "models": MODELS}

    edit_params(project, curves)
    return project


def test_curves_have_one_point_per_share_and_model_and_the_report_draws_them(toy: Path) -> None:
    from pipeline.report.build import build_report

    cfg = load_config(toy / "params.yaml")
    train(cfg, "toy", "tfidf_svm")  # the benchmark's run: the whole-train point of tfidf_svm
    record = LearningPoints.of("toy")
    assert record is None
    build_curves(cfg, "toy")
    record = LearningPoints.of("toy")
    assert record is not None
    assert sorted((p.model, p.fraction) for p in record.points) == sorted((m, f) for m in MODELS for f in FRACTIONS)
    for m in MODELS:
        docs = [p.train_docs for p in record.points if p.model == m]
        assert docs == sorted(docs) and docs[-1] == record.train_docs == 96
        assert all(p.classes_in_train == len(LABELS) for p in record.points if p.model == m)
    sources = {(p.model, p.fraction): p.model_dump()["source"] for p in record.points}
    assert sources.pop(("tfidf_svm", 1.0)) == "benchmark" and set(sources.values()) == {"fitted"}
    benchmark = json.loads((paths.report_dir("toy", "tfidf_svm") / "metrics.json").read_text())

    build_report(cfg)
    md = (toy / "reports" / "comparison.md").read_text(encoding="utf-8")
    assert "### Learning curves" in md and "macro-F1" in md
    assert all(f"| {m} |" in md for m in MODELS) and "| Model | 10% (" in md
    assert (toy / "reports" / "figures" / "toy" / "learning_curves.png").stat().st_size > 1000
    for m in MODELS:
        lines = (toy / "reports" / "learning_curves" / "toy" / f"{m}.csv").read_text().splitlines()
        assert lines[0] == "train_docs,fraction,f1,f1_lo,f1_hi" and len(lines) == 1 + len(FRACTIONS)
        for line in lines[1:]:
            _, _, f1, lo, hi = map(float, line.split(","))
            assert lo <= f1 <= hi
    whole = (toy / "reports" / "learning_curves" / "toy" / "tfidf_svm.csv").read_text().splitlines()[-1]
    assert float(whole.split(",")[2]) == pytest.approx(benchmark["macro_f1"], abs=1e-6)

    # a benchmark run of other settings (another fingerprint) is never taken for the whole-train point
    metrics_json = paths.report_dir("toy", "tfidf_svm") / "metrics.json"
    metrics_json.write_text(json.dumps(benchmark | {"fingerprint": "0" * 16}), encoding="utf-8")
    build_curves(cfg.model_copy(update={"curves": CurvesConfig(fractions=[1.0], models=["tfidf_svm"])}), "toy")
    (refit,) = LearningPoints.of("toy").points
    assert refit.model_dump()["source"] == "fitted" and refit.train_docs == 96


@pytest.mark.parametrize("model", MODELS)
def test_a_share_without_some_classes_fits_and_scores_every_class(toy: Path, model: str) -> None:
    cfg = load_config(toy / "params.yaml")
    two = frozenset(f"train-{i}" for i in range(96) if i % len(LABELS) < 2)  # toy class = index mod 4
    fitted = fit_model(cfg, "toy", model, None, paths.learning_partial("toy", model), train_ids=two)
    assert fitted is not None and fitted.train_docs == len(two)
    assert fitted.probs.shape == (24, len(LABELS)) and np.isfinite(fitted.probs).all()
    assert len(fitted.metrics.per_class) == len(LABELS)


def test_no_curves_yet_is_one_line_in_the_report(toy: Path) -> None:
    from pipeline.report.build import build_report

    build_report(load_config(toy / "params.yaml"))
    md = (toy / "reports" / "comparison.md").read_text(encoding="utf-8")
    assert "No learning curves yet: run `textbench curves -d toy`" in md


def test_multi_label_curves_score_micro_f1_and_count_the_labels_each_share_saw(project: Path) -> None:
    import pandas as pd

    from pipeline.data.prepare import prepare
    from pipeline.report.build import build_report
    from pipeline.tokenize.stage import tokenize_dataset

    rng = np.random.default_rng(0)
    topics = ["grain", "oil", "ship", "trade", "rare"]
    rows = []
    for i in range(240):
        tags = sorted(
            {topics[i % 4], *([topics[4]] if i % 40 == 1 else []), *([topics[(i // 4) % 4]] if i % 3 else [])}
        )
        words = [f"{t}{int(rng.integers(6))}" for t in tags for _ in range(4)] + [f"n{int(rng.integers(9))}"]
        rows.append({"text": " ".join(words), "label": tags, "split": "test" if i % 5 == 0 else "train"})
    pd.DataFrame(rows).to_json(project / "ml.jsonl", orient="records", lines=True)

    def multi(params: dict) -> None:
        params["datasets"] = {
            "ml": {
                "kind": "local",
                "label_mode": "multi",
                "path": "ml.jsonl",
                "split_column": "split",
                "dev_ratio": 0.2,
                "max_len": 24,
                "min_docs_per_class": 1,
            }
        }
        params["benchmark"] |= {"datasets": ["ml"], "models": ["tfidf_svm"]}
        params["curves"] = {"fractions": [0.05, 1.0], "models": ["tfidf_svm", "fasttext"]}

    edit_params(project, multi)
    cfg = load_config(project / "params.yaml")
    prepare(cfg, "ml")
    tokenize_dataset(cfg, "ml", ("vocab",))
    build_curves(cfg, "ml")
    record = LearningPoints.of("ml")
    assert record is not None and record.label_mode == "multi"
    assert sorted((p.model, p.fraction) for p in record.points) == [
        (m, f) for m in ("fasttext", "tfidf_svm") for f in (0.05, 1.0)
    ]
    small = [p for p in record.points if p.fraction == 0.05]
    assert all(p.classes_in_train <= len(record.labels) for p in small)
    assert record.decisions(small[0].pred).shape == (record.n, len(record.labels))
    build_report(cfg)
    md = (project / "reports" / "comparison.md").read_text(encoding="utf-8")
    assert "Test micro-F1 (multi-label" in md
