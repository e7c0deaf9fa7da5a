"""`textbench export` on trained models: ONNX logits match torch (and the ONNX runtime predicts
the same classes), int8/bf16 are measured, and the BERT encoder reloads with from_pretrained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.serve.export import export
from pipeline.serve.predictor import Predictor
from serve_models import model_dir, trained_root

TEXTS = ["goal", "the stock report said", "a week of news " * 10 + "goal", "board met"]


@pytest.mark.parametrize("name", ["textcnn", "bert"])
def test_onnx_logits_match_torch(name: str) -> None:
    report = export(model_dir(name), onnx=True, eval_file=_test_split(name))
    onnx = report["runtimes"]["onnx"]
    assert onnx["max_abs_logit_diff"] < 1e-3 and onnx["accuracy_delta"] == 0.0
    assert report["eval_docs"] == 40 and (model_dir(name) / "export" / "model.onnx").is_file()
    torch_p, onnx_p = Predictor.load(model_dir(name)), Predictor.load(model_dir(name), variant="onnx")
    np.testing.assert_allclose(onnx_p.predict_proba(TEXTS), torch_p.predict_proba(TEXTS), atol=1e-4)
    assert json.loads((model_dir(name) / "export" / "report.json").read_text())["runtimes"]["onnx"] == onnx


def test_int8_and_bf16_are_measured_and_hf_encoder_reloads() -> None:
    from transformers import AutoModel

    result = CliRunner().invoke(app, ["export", str(model_dir("bert")), "--int8", "--bf16",
                                      "--eval", str(_test_split("bert"))])
    assert result.exit_code == 0, result.output
    report = json.loads((model_dir("bert") / "export" / "report.json").read_text())
    assert {"fp32", "int8"} <= set(report["runtimes"]) and "int8" in result.stdout
    assert abs(report["runtimes"]["int8"]["accuracy_delta"]) <= 0.05
    assert "bf16" in report["runtimes"] or any("bf16 skipped" in n for n in report["notes"])
    encoder = AutoModel.from_pretrained(model_dir("bert") / "export" / "hf")
    trained = Predictor.load(model_dir("bert")).model.embedder.encoder
    assert all(np.array_equal(a.detach().numpy(), b.detach().numpy())
               for a, b in zip(encoder.state_dict().values(), trained.state_dict().values()))
    assert (model_dir("bert") / "export" / "hf" / "tokenizer.json").is_file()


def test_onnx_variant_without_export_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["predict", str(model_dir("textcnn")), "-", "--variant", "onnx-int8"], input="x\n")
    assert result.exit_code != 0 and "textbench export" in str(result.exception)


def _test_split(name: str) -> Path:
    return trained_root() / "reports" / "reuters" / name / "predictions.parquet"
