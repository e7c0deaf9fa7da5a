"""label_mode multi, end to end: Reuters ModApte-N and local label sets → prepare → tokenize → train
(BCE, multi-label metrics, dev threshold) → report (micro/macro-F1, paired bootstrap) → predict/serve."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from fastapi.testclient import TestClient

from conftest import base_params, project_root, read_params
from pipeline.config import config_from_dict, load_config
from pipeline.data.prepare import prepare
from pipeline.errors import TextbenchError
from pipeline.evaluate import THRESHOLD_GRID, score, tune_threshold
from pipeline.report.build import build_report
from pipeline.report.stats import bootstrap
from pipeline.serve.api import create_app
from pipeline.serve.predict import predict_file
from pipeline.serve.predictor import Predictor
from pipeline.tokenize.stage import tokenize_dataset
from pipeline.train.data import read_split
from pipeline.train.stage import train
from test_data_reuters import corpus_docs, make_config, make_tarball, sgml_doc


def prepared(project: Path, name: str, split: str) -> list[dict]:
    return pq.read_table(project / f"data/prepared/{name}/{split}.parquet").to_pylist()


def test_reuters_modapte_multi_keeps_topic_sets_with_train_and_test_documents(project):
    (project / "data/raw/reuters").mkdir(parents=True)
    docs = corpus_docs() + [
        sgml_doc(900, ["onlytrain"]),
        sgml_doc(901, ["acq", "onlytrain", "earn"]),
        sgml_doc(902, ["earn", "acq"], "TEST", body="both topics in test"),
        sgml_doc(903, [], body="no topic at all"),
    ]
    make_tarball(project / "data/raw/reuters/reuters21578.tar.gz", docs)
    out = prepare(make_config(project, label_mode="multi", min_docs_per_class=1), "reuters")
    card = json.loads((out / "card.json").read_text())
    reader = card["reader"]
    assert reader["kept_topics"] == 3 and card["labels"] == ["acq", "earn", "rare"]  # onlytrain: no test doc
    assert reader["no_kept_topic"] == 1 and reader["no_topic"] == 1  # doc 900; doc 903
    assert reader["modapte_with_kept_topic"] == {"train": 58, "test": 21}
    assert card["label_mode"] == "multi" and card["given_split_docs"] == {"test": 21, "train": 57}  # 1 empty text
    rows = {r["id"]: r for s in ("train", "dev", "test") for r in prepared(project, "reuters", s)}
    assert rows["901"]["labels"] == ["acq", "earn"] and rows["901"]["topics"] == ["acq", "onlytrain", "earn"]
    assert rows["902"]["labels"] == ["earn", "acq"] and "label" not in rows["902"]
    for split in ("train", "dev", "test"):  # counts = documents carrying each label
        got = pd.Series([lb for r in prepared(project, "reuters", split) for lb in r["labels"]]).value_counts()
        assert got.to_dict() == card["counts"][split]
    strict = prepare(make_config(project, label_mode="multi", min_docs_per_class=25), "reuters")
    assert json.loads((strict / "card.json").read_text())["labels"] == ["acq", "earn"]  # rare: 2 train docs


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv", "fasttext"])
def test_local_multi_label_column_list_or_delimited(project, fmt):
    sets = [["a"], ["a", "b"], ["b", "c"], ["c"]] * 10
    frame = pd.DataFrame({"text": [f"doc {i}" for i in range(40)], "label": sets})
    ds = {"kind": "local", "label_mode": "multi", "ratios": [0.5, 0.25, 0.25], "path": f"c.{fmt}"}
    if fmt == "jsonl":
        frame.to_json(project / "c.jsonl", orient="records", lines=True)
    elif fmt == "parquet":
        frame.to_parquet(project / "c.parquet")
    elif fmt == "csv":
        frame.assign(label=[" | ".join(s) for s in sets]).to_csv(project / "c.csv", index=False)
        ds["label_delimiter"] = "|"
    else:
        ds["path"] = "c.ft"
        (project / "c.ft").write_text(
            "".join(" ".join(f"__label__{x}" for x in s) + f" doc {i}\n" for i, s in enumerate(sets))
        )
    raw = read_params(project)
    raw["datasets"]["mine"] = ds
    out = prepare(config_from_dict(raw), "mine")
    card = json.loads((out / "card.json").read_text())
    assert card["labels"] == ["a", "b", "c"] and sum(card["totals"].values()) == 40
    got = {r["text"]: r["labels"] for s in ("train", "dev", "test") for r in prepared(project, "mine", s)}
    assert got["doc 1"] == ["a", "b"] and got["doc 2"] == ["b", "c"] and got["doc 3"] == ["c"]


def test_local_multi_labels_may_be_numbers(project):
    """A JSONL label list of ints reads as class names "1", "5" (before: AttributeError traceback)."""
    rows = [{"text": f"doc {i}", "label": [[1], [1, 5], [5]][i % 3]} for i in range(30)]
    pd.DataFrame(rows).to_json(project / "n.jsonl", orient="records", lines=True)
    raw = read_params(project)
    raw["datasets"]["num"] = {"kind": "local", "label_mode": "multi", "ratios": [0.6, 0.2, 0.2], "path": "n.jsonl"}
    out = prepare(config_from_dict(raw), "num")
    assert json.loads((out / "card.json").read_text())["labels"] == ["1", "5"]


def test_dev_carve_keeps_a_rare_labels_only_train_documents_in_train(project):
    rows = [{"text": f"common {i}", "label": ["a"], "split": "train"} for i in range(60)]
    rows += [{"text": f"rare {k}", "label": ["a", f"r{k}"], "split": "train"} for k in range(10)]  # first label: a
    rows += [{"text": f"test {k}", "label": ["a", f"r{k}"], "split": "test"} for k in range(10)]
    pd.DataFrame(rows).to_json(project / "c.jsonl", orient="records", lines=True)
    raw = read_params(project)
    raw["datasets"]["mine"] = {
        "kind": "local",
        "label_mode": "multi",
        "path": "c.jsonl",
        "split_column": "split",
        "dev_ratio": 0.3,
    }
    card = json.loads((prepare(config_from_dict(raw), "mine") / "card.json").read_text())
    assert card["classes_missing_from_split"]["train"] == [] and card["counts"]["dev"] == {"a": 18}
    assert card["totals"] == {"train": 52, "dev": 18, "test": 10}


def test_local_multi_needs_a_list_column_or_a_delimiter(project):
    pd.DataFrame({"text": ["x", "y"], "label": ["a|b", "b"]}).to_csv(project / "c.csv", index=False)
    raw = read_params(project)
    raw["datasets"]["mine"] = {"kind": "local", "label_mode": "multi", "path": "c.csv"}
    with pytest.raises(TextbenchError, match=r"column 'label' holds \w*string, not a list of labels.*label_delimiter"):
        prepare(config_from_dict(raw), "mine")
    raw["datasets"]["mine"] = {"kind": "thucnews", "label_mode": "multi"}
    with pytest.raises(TextbenchError, match="label_mode: THUCNews files hold one category each"):
        config_from_dict(raw)
    raw["datasets"]["mine"] = {"kind": "local", "path": "c.csv", "label_delimiter": "|"}
    with pytest.raises(TextbenchError, match="label_delimiter: splits label sets, so it needs label_mode: multi"):
        config_from_dict(raw)


# --- a generated multi-label corpus, end to end ------------------------------------------------

TOPICS = ["grain", "oil", "ship", "trade"]


def multi_rows(n: int, seed: int) -> list[dict]:
    """Documents with 1-2 topics; topic t's documents carry its words t0..t9 (plus shared noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        topics = sorted({TOPICS[i % 4], *([TOPICS[(i // 4) % 4]] if i % 3 == 0 else [])})
        words = [f"{t}{int(rng.integers(10))}" for t in topics for _ in range(int(rng.integers(3, 8)))]
        words += [f"noise{int(rng.integers(20))}" for _ in range(4)]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": topics, "split": "test" if i % 5 == 0 else "train"})
    return rows


@pytest.fixture(scope="module")
def multi_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """prepare → tokenize (vocab) → train textcnn, fasttext and tfidf_svm on 400 generated multi-label documents."""
    root = tmp_path_factory.mktemp("multi")
    raw = base_params()
    raw["datasets"]["ml"] = {
        "kind": "local",
        "label_mode": "multi",
        "path": "ml.jsonl",
        "split_column": "split",
        "dev_ratio": 0.2,
        "max_len": 32,
        "threshold": "dev",
    }
    raw["train"] |= {
        "epochs": 4,  # dev micro-F1 is past 0.98 after two
        "batch_size": 32,
        "patience": 0,
        "time_budget_s": 0,
        "precision": "fp32",
        "threads": 1,
    }
    raw["benchmark"] |= {"datasets": ["ml"], "models": ["textcnn", "fasttext", "tfidf_svm"]}
    # fastText with 1,000 n-gram buckets, not 200,000: faster to train, as learnable here
    raw["models"] = {"fasttext": {"arch": {"ngram_buckets": 1000}}}
    raw["report"] |= {"bootstrap": 200, "error_examples": 3}
    with project_root(root, raw):
        pd.DataFrame(multi_rows(400, 0)).to_json(root / "ml.jsonl", orient="records", lines=True)
        cfg = load_config(root / "params.yaml")
        prepare(cfg, "ml")
        tokenize_dataset(cfg, "ml", ("vocab",))
        for model in raw["benchmark"]["models"]:
            train(cfg, "ml", model)
        build_report(cfg)
        yield root


def test_multi_tokenize_and_train_write_label_sets_and_multilabel_metrics(multi_project):
    tok = multi_project / "data/tokenized/ml/vocab"
    meta = json.loads((tok / "meta.json").read_text())
    assert meta["label_mode"] == "multi" and meta["labels"] == TOPICS
    split = read_split(tok, "test", 4)
    gold = {r["id"]: r["labels"] for r in prepared(multi_project, "ml", "test")}
    assert split.labels.dtype == np.float32 and split.labels.shape == (80, 4)
    assert [[TOPICS[j] for j in np.flatnonzero(row)] for row in split.labels] == [gold[i] for i in split.ids]
    metrics = json.loads((multi_project / "reports/ml/textcnn/metrics.json").read_text())
    assert metrics["label_mode"] == "multi" and "confusion_matrix" not in metrics
    averages = ("micro", "macro", "weighted", "samples")
    assert {f"{a}_{m}" for a in averages for m in ("precision", "recall", "f1")} <= set(metrics)
    assert metrics["micro_f1"] > 0.9 and metrics["accuracy"] > 0.7  # learnable: each topic has its own words
    preds = pq.read_table(multi_project / "reports/ml/textcnn/predictions.parquet").to_pylist()
    exact = np.mean([r["label"] == r["pred"] for r in preds])
    assert exact == pytest.approx(metrics["accuracy"])  # accuracy = subset accuracy
    threshold = metrics["threshold"]  # threshold: dev, chosen on dev micro-F1 and kept for serving
    assert (
        threshold in THRESHOLD_GRID
        and threshold == json.loads((multi_project / "models/ml/textcnn/config.json").read_text())["threshold"]
    )
    assert all(r["pred"] == [t for t, p in zip(TOPICS, r["probs"]) if p >= threshold] for r in preds)
    assert any(len(r["pred"]) == 2 for r in preds)  # sigmoid outputs: several labels at once
    assert "dev_micro_f1" in (multi_project / "reports/ml/textcnn/curves.csv").read_text().splitlines()[0]
    assert json.loads((multi_project / "models/ml/textcnn/config.json").read_text())["label_mode"] == "multi"


def test_multilabel_metrics_match_hand_counts():
    y_true = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
    probs = np.array([[0.9, 0.6, 0.1], [0.2, 0.4, 0.1], [0.1, 0.2, 0.7], [0.8, 0.5, 0.0]])
    m = score(y_true, probs, ["a", "b", "c"])  # pred: {a,b} {} {c} {a,b}
    assert m["accuracy"] == 0.5 and m["hamming_loss"] == pytest.approx(2 / 12)
    assert m["micro_precision"] == pytest.approx(4 / 5) and m["micro_recall"] == pytest.approx(4 / 5)
    assert m["per_class"]["b"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["macro_f1"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert m["samples_f1"] == pytest.approx((1 + 0 + 1 + 2 / 3) / 4)


def test_multi_report_scores_micro_and_macro_f1_with_cis_and_a_paired_bootstrap(multi_project):
    scores = json.loads((multi_project / "reports/metrics.json").read_text())["ml"]
    metrics = json.loads((multi_project / "reports/ml/textcnn/metrics.json").read_text())
    entry = scores["textcnn"]
    assert entry["micro_f1"] == round(metrics["micro_f1"], 4)
    assert entry["hamming_loss"] == round(metrics["hamming_loss"], 4)
    for key in ("micro_f1", "macro_f1", "accuracy"):
        assert entry[f"{key}_ci_low"] <= entry[key] <= entry[f"{key}_ci_high"]
    md = (multi_project / "reports/comparison.md").read_text()
    assert "| Model | Subset acc | Micro-F1 | Macro-F1 |" in md and "Hamming loss" in md
    assert "McNemar's test does not apply" in md and "McNemar vs best" not in md and "Confusion matrix" not in md
    significance = md[md.index("Is the difference real?") : md.index("Per-class F1")]
    assert (
        "| Model | Micro-F1 [95% CI] | Macro-F1 [95% CI] | Best − model macro-F1 [95% CI] | Paired bootstrap p |"
        in significance
    )
    worse = min(scores, key=lambda m: scores[m]["macro_f1"])
    row = next(line for line in significance.splitlines() if line.startswith(f"| {worse} |"))
    assert row.count("[") == 3 and row.rstrip(" |").split("|")[-1].strip()  # a CI'd difference and a p-value
    assert "Most confidently wrong test documents" in md
    best = next(line for line in md.splitlines() if line.startswith("| [ml](#ml) |") or line.startswith("| ml |"))
    assert re.search(r"\d\.\d{4} \(subset\) · micro-F1 \d\.\d{4} \|", best)  # what its accuracy column means here


def test_bootstrap_micro_f1_matches_sklearn_on_the_full_sample():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 2, (50, 4)), rng.integers(0, 2, (50, 4))
    boot = bootstrap(y_true, y_pred, 4, 300, seed=1)
    full = score(y_true, y_pred.astype(float), TOPICS)
    assert np.mean(boot.micro_f1) == pytest.approx(full["micro_f1"], abs=0.03)
    assert np.mean(boot.macro_f1) == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=0.03)
    assert np.mean(boot.accuracy) == pytest.approx(full["accuracy"], abs=0.03)


def test_linear_baseline_is_one_binary_classifier_per_label(multi_project):
    """tfidf_svm on label sets: each label's logit × temperature is its own LinearSVC's decision score at
    the C chosen on dev, so the 0.5 sigmoid threshold is the classifier's decision (score ≥ 0)."""
    from pipeline.models.load import load_trained
    from pipeline.train.linear import _classifier, matrix

    metrics = json.loads((multi_project / "reports/ml/tfidf_svm/metrics.json").read_text())
    assert metrics["label_mode"] == "multi" and metrics["converged"] and metrics["micro_f1"] > 0.9
    assert "dev_micro_f1" in (multi_project / "reports/ml/tfidf_svm/curves.csv").read_text().splitlines()[0]
    net, cfg = load_trained(multi_project / "models/ml/tfidf_svm")
    tok = multi_project / "data/tokenized/ml/vocab"
    train_split, test = read_split(tok, "train", 4), read_split(tok, "test", 4)
    c = cfg.arch["c_grid"][metrics["best_step"] - 1]
    x_train, x_test = matrix(net.embedder, train_split), matrix(net.embedder, test)
    ids, mask = test.collate(np.arange(len(test)), 0)
    with torch.no_grad():
        logits = (net(ids, mask) * net.head.temperature).numpy()
    for j in range(len(TOPICS)):
        clf = _classifier("squared_hinge", c, cfg.arch["max_iter"], False, cfg.seed)
        clf.fit(x_train, train_split.labels[:, j].astype(int))
        np.testing.assert_allclose(logits[:, j], clf.decision_function(x_test), atol=1e-5)
    first = Predictor.load(multi_project / "models/ml/tfidf_svm").predict(["grain1 grain2 oil4 oil5"])[0]
    assert sorted(first["labels"]) == ["grain", "oil"]


def test_multi_predict_and_serve_return_every_label_above_threshold(multi_project):
    predictor = Predictor.load(multi_project / "models/ml/textcnn")
    both, one = "grain1 grain2 grain3 oil4 oil5 oil6", "ship1 ship2 ship3 ship4"
    first, second = predictor.predict([both, one])
    assert sorted(first["labels"]) == ["grain", "oil"] and second["labels"] == ["ship"]
    assert first["labels"] == [lb for lb, _ in sorted(first["probs"].items(), key=lambda kv: -kv[1])][:2]
    assert sum(first["probs"].values()) > 1.5  # sigmoid per label, not a softmax over labels
    pd.DataFrame({"text": [both, one, ""]}).to_csv(multi_project / "in.csv", index=False)
    out, rows = predict_file(predictor, str(multi_project / "in.csv"))
    got = pd.read_csv(out, keep_default_na=False)
    assert rows == 3 and got.columns[-2:].tolist() == ["labels", "needs_review"]
    assert sorted(got["labels"][0].split("|")) == ["grain", "oil"] and got["labels"][1] == "ship"
    assert got["needs_review"].tolist() == [False, False, True] and got["labels"][2] == ""
    client = TestClient(create_app(multi_project / "models"))
    body = client.post("/predict", json={"model": "ml/textcnn", "texts": [both]}).json()
    assert body["label_mode"] == "multi" and sorted(body["predictions"][0]["labels"]) == ["grain", "oil"]


def test_every_summary_of_a_multi_label_run_shows_its_micro_f1(multi_project, monkeypatch):
    """The score names come from one place (artifacts.HEADLINE): the flow's job rows (its comparison
    artifact and tables) and the API's /models show a multi-label run's micro-F1."""
    from flows import benchmark as bm

    monkeypatch.setenv("TEXTBENCH_ROOT", str(multi_project))
    metrics = json.loads((multi_project / "reports/ml/textcnn/metrics.json").read_text())
    micro = f"{metrics['micro_f1']:.4f}"
    jobs = bm.plan(load_config(multi_project / "params.yaml"), models=["textcnn"])[:1]
    rows = bm.job_rows(jobs, {jobs[0].name: {"status": "ok"}})
    assert rows[0]["micro_f1"] == micro and "micro_f1" in bm.shown_scores(rows)
    header, _, row = bm.comparison_markdown(rows).splitlines()
    assert "micro-F1" in header and micro in row.split(" | ")
    listed = TestClient(create_app(multi_project / "models")).get("/models").json()
    entry = next(m for m in listed if m.get("model") == "textcnn")
    assert entry["metrics"]["micro_f1"] == metrics["micro_f1"]


def test_multi_explain_attributes_the_labels_sigmoid_and_export_refuses_before_writing(multi_project):
    """IG completeness with the model's own sigmoid (softmax mixed co-occurring labels into the target's
    score); export of a multi-label model is one error with nothing written (before: hf/ and a card)."""
    from pipeline.serve.explain import explain
    from pipeline.serve.export import export

    predictor = Predictor.load(multi_project / "models/ml/textcnn")
    text = "grain1 grain2 grain3 oil4 oil5 oil6"
    e = explain(predictor, text, method="ig", target="oil", steps=64)
    ids_t, mask = (torch.from_numpy(a) for a in predictor.pad([predictor.encode([text])[0]]))
    with torch.no_grad():
        base = torch.sigmoid(predictor.model(torch.full_like(ids_t, predictor.pad_id), mask))[0, TOPICS.index("oil")]
    assert sum(e.scores) == pytest.approx(e.confidence - float(base), abs=0.03)
    with pytest.raises(TextbenchError, match="multi-label models cannot be exported"):
        export(multi_project / "models/ml/textcnn", onnx=False)
    assert not (multi_project / "models/ml/textcnn/export").exists()


def test_multi_page_shows_every_label_above_threshold_in_a_real_browser(multi_project, chromium):
    """The web page of a multi-label model names the whole label set and highlights each of its bars
    (before: the single most probable label, as for a single-label model)."""
    from serve_models import classify_in_page, serving

    text = "grain1 grain2 grain3 oil4 oil5 oil6"
    with (
        serving(multi_project / "models") as url,
        classify_in_page(url, chromium, "ml/textcnn", text) as (page, errors),
    ):
        verdict = page.inner_text("#verdict")
        highlighted = page.locator('#probchart rect.bar[fill="#2563eb"]').evaluate_all(
            "bars => bars.map(b => b.dataset.label)"
        )
    names, _, note = verdict.partition("every label")
    assert sorted(n.strip() for n in names.split(",")) == ["grain", "oil"] and "with probability ≥" in note
    assert sorted(highlighted) == ["grain", "oil"] and not errors


def test_threshold_dev_picks_the_best_dev_micro_f1_and_config_checks_it(project):
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    probs = np.array([[0.35, 0.1], [0.2, 0.4], [0.33, 0.45], [0.1, 0.25]])  # every positive in (0.3, 0.5)
    assert tune_threshold(y, probs) == 0.3 and score(y, probs, ["a", "b"], 0.3)["micro_f1"] == 1.0
    assert score(y, probs, ["a", "b"])["micro_f1"] == 0.0  # the default 0.5 predicts nothing
    raw = read_params(project)
    raw["datasets"]["reuters_multi"] = raw["datasets"]["reuters"] | {"label_mode": "multi", "min_docs_per_class": 1}
    assert config_from_dict(raw).datasets["reuters_multi"].threshold == 0.5
    raw["datasets"]["reuters_multi"]["threshold"] = "dev"
    assert config_from_dict(raw).datasets["reuters_multi"].threshold == "dev"
    raw["datasets"]["reuters_multi"]["threshold"] = 1.5
    with pytest.raises(TextbenchError, match="datasets.reuters_multi.threshold"):
        config_from_dict(raw)
