"""`textbench export` on trained models: ONNX logits match torch (and the ONNX runtime predicts
the same classes), int8/bf16 are measured, the BERT encoder reloads with from_pretrained, and the
exported `bert` is a transformers text-classification pipeline with textbench's predictions and a model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.serve.export import export
from pipeline.serve.predictor import Predictor
from serve_models import model_dir, predictor, trained_root

TEXTS = ["goal", "the stock report said", "a week of news " * 10 + "goal", "board met"]


def test_onnx_logits_match_torch() -> None:
    report = export(model_dir("textcnn"), onnx=True, eval_file=_test_split("textcnn"))
    onnx = report["runtimes"]["onnx"]
    assert onnx["max_abs_logit_diff"] < 1e-3 and onnx["accuracy_delta"] == 0.0
    assert report["eval_docs"] == 40 and (model_dir("textcnn") / "export" / "model.onnx").is_file()
    assert json.loads((model_dir("textcnn") / "export" / "report.json").read_text())["runtimes"]["onnx"] == onnx
    onnx_p = Predictor.load(model_dir("textcnn"), variant="onnx")
    np.testing.assert_allclose(onnx_p.predict_proba(TEXTS), predictor("textcnn").predict_proba(TEXTS), atol=1e-4)


@pytest.mark.slow
def test_bert_onnx_int8_bf16_and_hf_encoder_reloads() -> None:
    from transformers import AutoModel

    result = CliRunner().invoke(
        app, ["export", str(model_dir("bert")), "--onnx", "--int8", "--bf16", "--eval", str(_test_split("bert"))]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((model_dir("bert") / "export" / "report.json").read_text())
    assert report["runtimes"]["onnx"]["max_abs_logit_diff"] < 1e-3 and "onnx-int8" in result.stdout
    assert {"fp32", "onnx", "onnx-int8", "int8"} <= set(report["runtimes"])
    assert abs(report["runtimes"]["int8"]["accuracy_delta"]) <= 0.05
    assert "bf16" in report["runtimes"] or any("bf16 skipped" in n for n in report["notes"])
    onnx_p = Predictor.load(model_dir("bert"), variant="onnx")
    np.testing.assert_allclose(onnx_p.predict_proba(TEXTS), predictor("bert").predict_proba(TEXTS), atol=1e-4)
    encoder = AutoModel.from_pretrained(model_dir("bert") / "export" / "hf").state_dict()
    trained = predictor("bert").model.embedder.encoder.state_dict()
    assert encoder.keys() == trained.keys()
    assert all(np.array_equal(encoder[k].numpy(), trained[k].numpy()) for k in trained if not k.startswith("pooler."))
    assert (model_dir("bert") / "export" / "hf" / "tokenizer.json").is_file()


@pytest.mark.slow
def test_bert_export_is_a_transformers_pipeline_with_textbench_predictions_and_a_card(monkeypatch) -> None:
    from transformers import pipeline

    monkeypatch.setenv("TEXTBENCH_ROOT", str(trained_root()))
    report = export(model_dir("bert"), onnx=False)
    hf = model_dir("bert") / "export" / "hf"
    assert (
        report["hf"]["loads_with"] == "AutoModelForSequenceClassification" and report["hf"]["max_abs_logit_diff"] < 1e-4
    )
    # longer than max_len 32, full-width letters (NFKC), a control character between words
    texts = TEXTS + ["ｇｏａｌ was\x01scored", "stock " + "the market said " * 40 + "goal"]
    clf = pipeline("text-classification", model=str(hf), truncation=True, top_k=None, device="cpu")
    expected = predictor("bert").predict(texts)
    for got, want in zip(clf(texts), expected):
        assert max(got, key=lambda r: r["score"])["label"] == want["label"]
        np.testing.assert_allclose(
            [r["score"] for r in sorted(got, key=lambda r: r["label"])],
            [want["probs"][k] for k in sorted(want["probs"])],
            atol=1e-4,
        )
    card = (model_dir("bert") / "export" / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["pipeline_tag"] == "text-classification" and front["datasets"] == ["reuters"]
    assert {"accuracy", "macro_f1"} <= set(front["metrics"]) and "## Training settings" in card
    accuracy = json.loads((trained_root() / "reports" / "reuters" / "bert" / "metrics.json").read_text())["accuracy"]
    assert f"| accuracy | {accuracy:.4f} |" in card and "lr: 0.0002" in card
    assert (hf / "README.md").read_text() == card


def test_onnx_variant_without_export_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["predict", str(model_dir("textcnn")), "-", "--variant", "onnx-int8"], input="x\n")
    assert result.exit_code != 0 and "textbench export" in str(result.exception)


def _test_split(name: str) -> Path:
    return trained_root() / "reports" / "reuters" / name / "predictions.parquet"


def test_int8_variant_of_a_recurrent_model_predicts_as_fp32() -> None:
    """Dynamic int8 quantizes the Linear layers; the RNN heads run on their cells' own fp32 weights
    (a quantized LSTM module has none), so an lstm int8 predictor works and keeps fp32's labels."""
    mdir = trained_root(("lstm",)) / "models" / "reuters" / "lstm"
    fp32, int8 = Predictor.load(mdir), Predictor.load(mdir, variant="int8")
    np.testing.assert_allclose(int8.predict_proba(TEXTS), fp32.predict_proba(TEXTS), atol=0.05)


def test_a_retrain_keeps_export_and_every_reader_refuses_it_until_reexported(tmp_path, monkeypatch, capsys) -> None:
    """export/ is the user's (paths.KEPT_BY_RETRAIN): a retrain with other weights keeps it, and then
    `--variant onnx` (predict, serve: Predictor) refuses it as stale with one error line until it is
    rebuilt, rather than serving an ONNX graph of the old weights."""
    from pipeline.config import load_config
    from pipeline.train.stage import train
    from test_artifacts import run_cli

    for part in ("params.yaml", "data"):
        src = trained_root() / part
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, tmp_path / part)
    monkeypatch.setenv("TEXTBENCH_ROOT", str(tmp_path))
    cfg = load_config(tmp_path / "params.yaml")
    mdir = tmp_path / "models" / "reuters" / "textcnn"
    train(cfg, "reuters", "textcnn")
    export(mdir, onnx=True)
    Predictor.load(mdir, variant="onnx")  # fresh: loads
    train(cfg, "reuters", "textcnn", seed=cfg.seed + 1)  # other weights
    assert (mdir / "export" / "model.onnx").is_file(), "the retrain deleted the user's export/"
    capsys.readouterr()  # the trainers' progress bars
    code, err = run_cli(["predict", str(mdir), "-", "--variant", "onnx"], capsys, monkeypatch)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "stale" in lines[0], err
    assert f"rerun `textbench export {mdir} --onnx`" in lines[0]
    export(mdir, onnx=True)
    onnx = Predictor.load(mdir, variant="onnx")
    np.testing.assert_allclose(onnx.predict_proba(TEXTS), Predictor.load(mdir).predict_proba(TEXTS), atol=1e-4)
