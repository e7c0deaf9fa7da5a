"""The linear baselines (tfidf_svm, tfidf_lr) through the real entry points: trained by the CLI on a
generated corpus, their torch module computes sklearn's TF-IDF and decision scores, and predict,
serve, explain and load_trained work on them like on every other model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import project_root
from pipeline import paths
from pipeline.cli import app
from pipeline.config import config_from_dict
from pipeline.errors import TextbenchError
from pipeline.models.load import load_trained
from pipeline.serve.api import create_app
from pipeline.serve.explain import explain
from pipeline.serve.predictor import Predictor
from pipeline.train.data import read_split
from pipeline.train.linear import _classifier, matrix
from serve_models import write_corpus

MODELS = ("tfidf_svm", "tfidf_lr")
runner = CliRunner()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planted-word two-class corpus (serve_models.write_corpus), tokenized, both baselines trained by
    `textbench train` under params written here (no shipped defaults)."""
    root = tmp_path_factory.mktemp("linear")
    params = {
        "datasets": {"reuters": {"kind": "local", "path": "unused.csv", "max_len": 32}},
        "train": {"threads": 1},
        "models": {"tfidf_lr": {"arch": {"c_grid": [1.0, 10.0]}}},
        "benchmark": {"datasets": ["reuters"], "models": list(MODELS)},
    }
    with project_root(root, params):
        write_corpus(root)
        assert runner.invoke(app, ["tokenize", "-d", "reuters", "-s", "vocab"]).exit_code == 0
        for model in MODELS:
            result = runner.invoke(app, ["train", "-d", "reuters", "-m", model])
            assert result.exit_code == 0, result.output
    return root


@pytest.mark.parametrize("model, grid", [("tfidf_svm", 5), ("tfidf_lr", 2)])
def test_trained_like_every_model(root: Path, model: str, grid: int) -> None:
    rdir = root / "reports" / "reuters" / model
    m = json.loads((rdir / "metrics.json").read_text())
    assert m["accuracy"] == 1.0 and m["stop_reason"] == "solver" and m["converged"] is True
    assert m["evaluations"] == m["steps"] == grid and 1 <= m["best_step"] <= grid
    assert len(m["params"]["arch"]["c_grid"]) == grid and m["num_params"] > 0
    curves = (rdir / "curves.csv").read_text().splitlines()
    assert curves[0] == "step,train_loss,dev_loss,dev_accuracy,dev_macro_f1" and len(curves) == grid + 1
    preds = pq.read_table(rdir / "predictions.parquet").to_pandas()
    predictor = Predictor.load(root / "models" / "reuters" / model, batch_size=7)  # reloaded from config.json
    np.testing.assert_allclose(predictor.predict_proba(preds["text"].tolist()), np.stack(preds["probs"]), atol=1e-5)
    assert not paths.partial_dir(root / "models" / "reuters" / model).exists()


@pytest.mark.parametrize("model", MODELS)
def test_module_computes_sklearns_tfidf_and_decision_scores(root: Path, model: str) -> None:
    """Features = TfidfVectorizer's on the same ids (fitted on train); logits × temperature = the decision
    scores of the sklearn classifier refitted at the chosen C (binary: its one score, as −s/2, s/2)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    net, cfg = load_trained(root / "models" / "reuters" / model)
    tok = root / "data" / "tokenized" / "reuters" / "vocab"
    train, test = (read_split(tok, s, cfg.num_labels) for s in ("train", "test"))
    docs = {
        name: [" ".join(map(str, split.values[split.offsets[i] : split.offsets[i + 1]])) for i in range(len(split))]
        for name, split in (("train", train), ("test", test))
    }
    vec = TfidfVectorizer(token_pattern=r"\S+", ngram_range=(1, 2), sublinear_tf=True, lowercase=False)
    vec.fit(docs["train"])
    v = cfg.vocab_size
    key = {
        gram: sum(int(t) * v ** (len(gram.split()) - 1 - j) for j, t in enumerate(gram.split()))
        for gram in vec.vocabulary_
    }
    keys = net.embedder.keys[:-1].numpy()
    assert sorted(key.values()) == keys.tolist()
    ours = matrix(net.embedder, test).toarray()
    theirs = vec.transform(docs["test"]).toarray()[:, [vec.vocabulary_[g] for g in sorted(key, key=key.get)]]
    np.testing.assert_allclose(ours, theirs, atol=1e-6)

    arch = cfg.arch
    metrics = json.loads((root / "reports" / "reuters" / model / "metrics.json").read_text())
    clf = _classifier(arch["loss"], arch["c_grid"][metrics["best_step"] - 1], arch["max_iter"], False, cfg.seed)
    clf.fit(matrix(net.embedder, train), train.labels)
    x = torch.from_numpy(ours.astype(np.float32))
    ids, mask = test.collate(np.arange(len(test)), 0)
    with torch.no_grad():
        logits = (net(ids, mask) * net.head.temperature).numpy()
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], clf.decision_function(x.numpy()), atol=1e-5)
    np.testing.assert_allclose(logits.sum(1), 0, atol=1e-5)
    pad = torch.zeros(len(test), 5, dtype=ids.dtype)
    with torch.no_grad():  # padding changes nothing
        torch.testing.assert_close(net(torch.cat([ids, pad], 1), torch.cat([mask, pad], 1)), net(ids, mask))


def test_multiclass_weights_are_sklearns_rows(tmp_path: Path) -> None:
    """Four classes: each class's logit × temperature is sklearn's decision score for it."""
    from pipeline.models.registry import BuildContext, build_model
    from pipeline.train.checkpoint import TrainState
    from pipeline.train.data import Split
    from pipeline.train.linear import fit_linear
    from train_fixtures import LABELS, toy_docs

    cfg = config_from_dict(
        {
            "datasets": {"toy": {"kind": "local", "path": "x.csv"}},
            "benchmark": {"datasets": ["toy"], "models": ["tfidf_svm"]},
        }
    )
    splits = {}
    for s, n in (("train", 80), ("dev", 24)):
        docs, labels = toy_docs(n, seed=len(s))
        splits[s] = Split.from_seqs([np.array(d) + 2 for d in docs], np.array(labels))
    net, arch = build_model("tfidf_svm", BuildContext(len(LABELS), 42, 0, 16), {"c_grid": [0.5]})
    fit_linear(net, splits["train"], splits["dev"], LABELS, cfg.train_for("tfidf_svm"), 0, TrainState("fp", 4))
    clf = _classifier("squared_hinge", 0.5, arch["max_iter"], False, 0).fit(
        matrix(net.embedder, splits["train"]), splits["train"].labels
    )
    ids, mask = splits["dev"].collate(np.arange(24), 0)
    with torch.no_grad():
        logits = (net(ids, mask) * net.head.temperature).numpy()
    np.testing.assert_allclose(logits, clf.decision_function(matrix(net.embedder, splits["dev"])), atol=1e-5)


def test_predict_cli_serve_and_explain(root: Path) -> None:
    mdir = root / "models" / "reuters" / "tfidf_svm"
    out = runner.invoke(app, ["predict", str(mdir), "-"], input="the goal came late\nstock prices fell\n")
    assert out.exit_code == 0, out.output
    assert [json.loads(line)["label"] for line in out.output.splitlines()] == ["sports", "finance"]
    client = TestClient(create_app(root / "models"), raise_server_exceptions=False)
    r = client.post("/predict", json={"model": "reuters/tfidf_lr", "texts": ["a goal today", "the stock rose"]})
    assert r.status_code == 200 and [p["label"] for p in r.json()["predictions"]] == ["sports", "finance"]
    e = client.post("/explain", json={"model": "reuters/tfidf_svm", "text": "the stock rose this week"}).json()
    assert e["method"] == "linear" and e["label"] == "finance" and e["tokens"][int(np.argmax(e["scores"]))] == "stock"
    cli = runner.invoke(app, ["explain", str(mdir), "the goal came late"])
    assert cli.exit_code == 0 and cli.output.startswith("sports\t") and "(linear)" in cli.output
    assert runner.invoke(app, ["predict", str(mdir), "-", "--variant", "int8"], input="goal\n").exit_code == 0
    onnx = subprocess.run(
        [sys.executable, "-m", "pipeline", "predict", str(mdir), "-", "--variant", "onnx"],
        input="goal\n",
        capture_output=True,
        text=True,
    )
    assert onnx.returncode == 2 and onnx.stderr.startswith("error: ") and onnx.stderr.count("\n") == 1
    assert "no ONNX graph" in onnx.stderr


def test_explanation_is_the_exact_logit_share(root: Path) -> None:
    """Token scores sum to the class's logit minus its bias; a bigram's share is split between its tokens."""
    p = Predictor.load(root / "models" / "reuters" / "tfidf_svm")
    text = "goal goal the stock market"
    e = explain(p, text, target="finance")
    ids, mask = (torch.from_numpy(a) for a in p.pad(p.encode([text])))
    head = p.model.head
    t = p.labels.index("finance")
    with torch.no_grad():
        logit = p.model(ids, mask)[0, t] - head.linear.bias[t] / head.temperature
    assert e.tokens == text.split() and sum(e.scores) == pytest.approx(float(logit), abs=1e-5)
    assert e.scores[3] > 0 > e.scores[0]  # "stock" speaks for finance, "goal" against


def test_export_writes_the_card_and_notes_no_onnx(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("TEXTBENCH_ROOT", str(root))  # the tokenized test split it evaluates on
    mdir = root / "models" / "reuters" / "tfidf_svm"
    result = runner.invoke(app, ["export", str(mdir), "--onnx", "--int8"])
    assert result.exit_code == 0, result.output
    report = json.loads((mdir / "export" / "report.json").read_text())
    assert set(report["runtimes"]) == {"fp32", "int8"} and (mdir / "export" / "README.md").is_file()
    assert any("no ONNX graph" in n for n in report["notes"]) and report["runtimes"]["int8"]["accuracy"] == 1.0


def test_corrupt_arch_and_bad_params_are_named_errors(root: Path, tmp_path: Path) -> None:
    import shutil

    mdir = tmp_path / "tfidf_svm"
    shutil.copytree(root / "models" / "reuters" / "tfidf_svm", mdir)
    cfg = json.loads((mdir / "config.json").read_text())
    cfg["arch"]["ngram_max"] = 7
    (mdir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TextbenchError, match=r"config\.json.*models\.tfidf_svm\.arch\.ngram_max"):
        load_trained(mdir)
    from pipeline.models.registry import resolve_arch

    with pytest.raises(TextbenchError, match=r"models\.tfidf_lr\.arch\.c_grid"):
        resolve_arch("tfidf_lr", {"c_grid": []})
    with pytest.raises(TextbenchError, match=r"models\.tfidf_svm\.arch\.embed_dim: unknown key"):
        resolve_arch("tfidf_svm", {"embed_dim": 128})


def test_fingerprint_ignores_train_keys_linear_models_do_not_read() -> None:
    """lr/epochs do not retrain a linear baseline; select_metric does; a neural model hashes them all."""

    def cfg(**train):
        return config_from_dict(
            {
                "datasets": {"toy": {"kind": "local", "path": "x.csv"}},
                "train": train,
                "benchmark": {"datasets": ["toy"], "models": ["tfidf_svm"]},
            }
        )

    base = cfg().train_for("tfidf_svm").identity("linear")
    assert cfg(lr=0.5, epochs=9, device="cpu").train_for("tfidf_svm").identity("linear") == base
    assert cfg(select_metric="macro_f1").train_for("tfidf_svm").identity("linear") != base
    assert cfg(lr=0.5).train_for("textcnn").identity("classic") != cfg().train_for("textcnn").identity("classic")


def test_family_arch_does_not_leak_between_classic_and_linear() -> None:
    raw = {
        "datasets": {"toy": {"kind": "local", "path": "x.csv"}},
        "families": {"classic": {"arch": {"embed_dim": 64}}, "linear": {"arch": {"ngram_max": 1}}},
        "benchmark": {"datasets": ["toy"], "models": ["tfidf_svm", "textcnn"]},
    }
    cfg = config_from_dict(raw)
    assert cfg.arch_for("tfidf_lr") == {"ngram_max": 1} and cfg.arch_for("textcnn") == {"embed_dim": 64}
    raw["families"]["linear"] = {"arch": {"embed_dim": 64}}
    with pytest.raises(TextbenchError, match=r"families\.linear\.arch\.embed_dim: unknown key for tfidf_svm"):
        config_from_dict(raw).arch_for("tfidf_svm")


def test_report_says_whether_a_simple_baseline_is_best() -> None:
    from pipeline.config import ReportConfig
    from pipeline.report.aggregate import ModelResult
    from pipeline.report.compare import Paired, Row
    from pipeline.report.sections import baseline_line, training_text
    from pipeline.report.stats import McNemar

    def run(model: str, acc: float, f1: float, paired: Paired | None = None) -> Row:
        return Row(ModelResult("reuters", model, "ok", metrics={"accuracy": acc, "macro_f1": f1}), paired=paired)

    report = ReportConfig()
    line = baseline_line(
        [run("tfidf_svm", 0.944, 0.754), run("tfidf_lr", 0.93, 0.71), run("textcnn", 0.92, 0.60)], report
    )
    assert line.startswith("A simple baseline is the best model: tfidf_svm")
    tested = Paired(McNemar(10, 20, 0.0987), 0.012, (0.001, 0.02), 0.031)
    line = baseline_line([run("tfidf_svm", 0.9472, 0.8087, tested), run("bert_cnn", 0.9436, 0.8207)], report)
    assert line == (
        "Against the best simple baseline (tfidf_svm, TF-IDF + linear classifier) the best model, bert_cnn, is "
        "+1.2 macro-F1 and -0.4 accuracy points (macro-F1 p = 0.0310 ✱, paired bootstrap; accuracy p = 0.0987, McNemar). "
    )
    assert baseline_line([run("textcnn", 0.9, 0.6)], report) == ""
    m = {
        "stop_reason": "solver",
        "converged": True,
        "best_step": 3,
        "steps": 5,
        "evaluations": 5,
        "params": {"arch": {"c_grid": [0.1, 0.3, 1.0, 3.0, 10.0]}},
        "confusion_matrix": [[1, 0], [0, 1]],
    }
    assert training_text(m) == "converged (solver; C=1 chosen on dev of 5)"
    assert training_text(m | {"converged": False}) == "⚠ solver hit max_iter (C=1 chosen on dev of 5)"
    assert training_text(m | {"best_step": 5}) == (
        "converged (solver; C=10 chosen on dev of 5, the grid's largest: widen models.<name>.arch.c_grid)"
    )


@pytest.mark.parametrize("arch", [{"ngram_max": 3, "sublinear_tf": False, "min_df": 2}, {"ngram_max": 1}])
def test_other_vectorizer_settings_match_sklearn(arch: dict) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from pipeline.models.registry import BuildContext, build_model
    from pipeline.train.data import Split
    from pipeline.train.linear import fit_vocabulary
    from train_fixtures import toy_docs

    docs = {
        s: [np.array(d) + 2 for d in toy_docs(n, seed=i)[0]] for i, (s, n) in enumerate((("train", 60), ("test", 20)))
    }
    net, kw = build_model("tfidf_svm", BuildContext(4, 42, 0, 16), arch)
    fit_vocabulary(net.embedder, Split.from_seqs(docs["train"]))
    vec = TfidfVectorizer(
        token_pattern=r"\S+",
        ngram_range=(1, kw["ngram_max"]),
        sublinear_tf=kw["sublinear_tf"],
        min_df=kw["min_df"],
        lowercase=False,
    )
    vec.fit([" ".join(map(str, d)) for d in docs["train"]])
    key = {g: sum(int(t) * 42 ** (len(g.split()) - 1 - j) for j, t in enumerate(g.split())) for g in vec.vocabulary_}
    assert sorted(key.values()) == net.embedder.keys[:-1].tolist()
    theirs = vec.transform([" ".join(map(str, d)) for d in docs["test"]]).toarray()
    np.testing.assert_allclose(
        matrix(net.embedder, Split.from_seqs(docs["test"])).toarray(),
        theirs[:, [vec.vocabulary_[g] for g in sorted(key, key=key.get)]],
        atol=1e-6,
    )


def test_a_dev_document_of_an_untrained_class_leaves_the_calibration_alone() -> None:
    """A class with no train documents (never predicted: ABSENT_BIAS) must not take part in fitting the
    temperature: before, one such dev document pushed T to its bound and every probability to uniform."""
    from pipeline.models.registry import BuildContext, build_model
    from pipeline.train.checkpoint import TrainState
    from pipeline.train.data import Split
    from pipeline.train.linear import fit_linear
    from train_fixtures import LABELS, toy_docs

    cfg = config_from_dict(
        {
            "datasets": {"toy": {"kind": "local", "path": "x.csv"}},
            "benchmark": {"datasets": ["toy"], "models": ["tfidf_svm"]},
        }
    )
    labels = [*LABELS, "unseen"]
    docs, y = toy_docs(80, seed=5)
    train_split = Split.from_seqs([np.array(d) + 2 for d in docs], np.array(y))
    docs, y = toy_docs(24, seed=3)
    temperatures = []
    for extra in ([], [4]):  # the same dev set, then with one document of the class train never saw
        dev = Split.from_seqs([np.array(d) + 2 for d in docs + [docs[0]] * len(extra)], np.array(y + extra))
        net, _ = build_model("tfidf_svm", BuildContext(len(labels), 42, 0, 16), {"c_grid": [0.5]})
        fit_linear(net, train_split, dev, labels, cfg.train_for("tfidf_svm"), 0, TrainState("fp", len(labels)))
        temperatures.append(float(net.head.temperature))
    assert temperatures[1] == pytest.approx(temperatures[0], rel=1e-6) and temperatures[0] < 100
