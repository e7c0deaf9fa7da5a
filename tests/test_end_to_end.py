"""The fast tier's end-to-end run: the real tokenize stage and trainer (serve_models' session models,
textcnn and bert on a generated corpus), then `textbench predict` and `textbench report` through the
CLI on what they wrote. `make test-all` adds the flow, DVC and browser versions of this path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from serve_models import TRAIN, trained_root


def test_train_predict_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = trained_root()
    monkeypatch.chdir(root)
    monkeypatch.setenv("TEXTBENCH_ROOT", str(root))
    (tmp_path / "in.csv").write_text("text\nthe goal of the week\nstock news today\n", encoding="utf-8")
    runner = CliRunner()
    for model in TRAIN:
        result = runner.invoke(app, ["predict", f"models/reuters/{model}", str(tmp_path / "in.csv"), "-o", "-"])
        assert result.exit_code == 0, result.output
        assert [json.loads(line)["label"] for line in result.stdout.splitlines()] == ["sports", "finance"]

    result = runner.invoke(app, ["report", "--params", "params.yaml"])
    assert result.exit_code == 0, result.output
    scores = json.loads((root / "reports" / "metrics.json").read_text(encoding="utf-8"))["reuters"]
    for model in TRAIN:
        run = json.loads((root / "reports" / "reuters" / model / "metrics.json").read_text(encoding="utf-8"))
        assert scores[model]["accuracy"] == run["accuracy"] > 0.9
    md = (root / "reports" / "comparison.md").read_text(encoding="utf-8")
    assert "## Dataset: reuters" in md and all(f"| {model} " in md for model in TRAIN)
