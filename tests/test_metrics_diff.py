"""`textbench diff`: markdown of `dvc metrics diff` + `dvc params diff` between two commits of a real
git + DVC repository (the body of the pull-request comment): scores first, cost figures collapsed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import TextbenchError
from pipeline.metrics_diff import metrics_diff_markdown

pytestmark = pytest.mark.slow  # git and dvc subprocesses per test

DVC_YAML = """stages:
  train:
    cmd: python -c "print('trained')"
    params: [train.lr, train.epochs]
    metrics:
      - reports/metrics.json:
          cache: false
      - reports/cost.json:
          cache: false
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True, capture_output=True
    )


def commit(repo: Path, accuracy: float, lr: float, message: str, train_time_s: float = 12.5) -> None:
    (repo / "params.yaml").write_text(f"train:\n  lr: {lr}\n  epochs: 3\n", encoding="utf-8")
    (repo / "reports").mkdir(exist_ok=True)
    (repo / "reports/metrics.json").write_text(
        json.dumps({"reuters": {"textcnn": {"accuracy": accuracy, "macro_f1": 0.5}}})
    )
    (repo / "reports/cost.json").write_text(
        json.dumps({"reuters": {"textcnn": {"num_params": 110_000, "train_time_s": train_time_s}}})
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
    commit(repo, 0.8, 0.001, "base")
    git(repo, "checkout", "-q", "-b", "pr")
    commit(repo, 0.85, 0.002, "raise lr")
    return repo


def test_markdown_shows_the_changed_metric_and_param(repo: Path) -> None:
    text = metrics_diff_markdown("main", "pr", repo)
    metrics, params = text.split("### Params")
    assert "| reuters.textcnn.accuracy | 0.8 | 0.85 | +0.05 |" in metrics
    assert "macro_f1" not in metrics and "No cost figures changed." in metrics  # unchanged metrics are left out
    assert "train.lr" in params and "0.001" in params and "0.002" in params and "epochs" not in params
    assert "|" in metrics and "|" in params  # GitHub tables


def test_cli_against_the_workspace_writes_the_comment_body(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    out = repo.parent / "comment.md"
    result = CliRunner().invoke(app, ["diff", "--base", "pr", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "No scores changed." in text and "No cost figures changed." in text and "No params changed." in text


def test_identical_scores_show_no_change_and_cost_only_collapsed(repo: Path) -> None:
    """A rerun with the same scores but another train time: nothing under Scores, the time in <details>."""
    git(repo, "checkout", "-q", "-b", "rerun")
    commit(repo, 0.85, 0.002, "same run again", train_time_s=14.0)
    text = metrics_diff_markdown("pr", "rerun", repo)
    scores, rest = text.split("<details>")
    assert "No scores changed." in scores and "train_time_s" not in scores
    folded = rest.split("</details>")[0]
    assert "<summary>Cost: 1 changed" in folded and "| reuters.textcnn.train_time_s | 12.5 | 14 | +1.5 |" in folded
    assert "num_params" not in text


def test_unknown_revision_is_one_clear_error(repo: Path) -> None:
    with pytest.raises(TextbenchError, match="dvc metrics diff no-such-branch"):
        metrics_diff_markdown("no-such-branch", None, repo)


def test_a_base_from_before_the_split_shows_its_cost_keys_as_cost(repo: Path) -> None:
    """A base whose metrics.json still held params/train_time_s: their move to cost.json is no score change."""
    git(repo, "checkout", "-q", "-b", "old", "main")
    (repo / "reports/cost.json").unlink()
    (repo / "reports/metrics.json").write_text(
        json.dumps(
            {"reuters": {"textcnn": {"accuracy": 0.8, "macro_f1": 0.5, "params": 110_000, "train_time_s": 12.5}}}
        )
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "before the split")
    scores, folded = metrics_diff_markdown("old", "main", repo).split("<details>")
    assert "No scores changed." in scores
    assert "| reuters.textcnn.params | 110000 | — | — |" in folded and "reuters.textcnn.num_params" in folded
