"""`textbench diff`: markdown of `dvc metrics diff` + `dvc params diff` between two commits of a real
git + DVC repository (the body of the pull-request comment): the verdict line (base and head runs of
each model tested on the same test documents), scores, cost figures collapsed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.errors import TextbenchError
from pipeline.evaluate import classification_metrics, predictions_table
from pipeline.io import write_json
from pipeline.metrics_diff import metrics_diff_markdown
from pipeline.report.build import build_report
from test_report import LABELS, REPO, SEEDS, make_project, write_run

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


# --- base vs head runs of one model: real, within noise, not comparable, unchanged ----------------


def rerun(
    root: Path, ds: str, model: str, noise_seed: int, accuracy: float, env: dict | None = None, relabel: int = 0
) -> None:
    """Rewrite one run's predictions on the same test documents: each right with probability `accuracy`,
    drawn with `noise_seed` (another training seed of an unchanged model, or a crippled model); `relabel`:
    the first documents' gold class moved on (as after a change to preparation)."""
    rdir = root / "reports" / ds / model
    df = pd.read_parquet(rdir / "predictions.parquet")
    labels = LABELS[ds]
    y_true = np.array(df["label"].map({name: i for i, name in enumerate(labels)}))
    y_true[:relabel] = (y_true[:relabel] + 1) % len(labels)
    rng = np.random.default_rng(noise_seed)
    wrong = rng.random(len(y_true)) > accuracy
    y_pred = np.where(wrong, (y_true + rng.integers(1, len(labels), len(y_true))) % len(labels), y_true)
    probs = np.full((len(y_true), len(labels)), 0.05)
    probs[np.arange(len(y_true)), y_pred] = 0.9
    pq.write_table(
        predictions_table(df["id"].tolist(), df["text"].tolist(), y_true, probs, labels), rdir / "predictions.parquet"
    )
    metrics = json.loads((rdir / "metrics.json").read_text())
    write_json(
        rdir / "metrics.json", metrics | classification_metrics(y_true, y_pred, labels) | ({"env": env} if env else {})
    )


ENV = {
    "device": "cpu",
    "cpu": "AMD EPYC",
    "isa": ["avx2"],
    "precision": "fp32",
    "threads": 2,
    "torch": "2.3.1",
    "transformers": "4.44.0",
}


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A report committed on main (reports/<ds>/ ignored, as in the project), then branch pr."""
    root = tmp_path / "runs"
    root.mkdir()
    make_project(root)
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy(REPO / name, root / name)
    monkeypatch.setenv("TEXTBENCH_ROOT", str(root))
    for ds in LABELS:
        for model in ("bert", "textcnn"):
            metrics = root / "reports" / ds / model / "metrics.json"
            write_json(metrics, json.loads(metrics.read_text()) | {"env": ENV})
    git(root, "init", "-q", "-b", "main")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    report_commit(root, "base")
    git(root, "checkout", "-q", "-b", "pr")
    return root


def report_commit(root: Path, message: str) -> None:
    build_report(load_config(root / "params.yaml"))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def test_a_crippled_model_is_a_real_change_and_another_seed_is_noise(runs: Path) -> None:
    bf16 = ENV | {"precision": "bf16", "cpu": "Intel Xeon", "isa": ["avx2", "amx_tile"]}
    rerun(runs, "reuters", "textcnn", 1, 0.25, bf16)  # crippled: 0.65 → ~0.25
    rerun(runs, "reuters", "bert", 2, 0.9, bf16)  # the same model's accuracy, other mistakes: another seed
    report_commit(runs, "head")
    text = metrics_diff_markdown("main", "pr", runs)
    first, rest = text.split("\n", 1)
    assert first.startswith(
        "**Verdict: 1 row changed for real (1 worse), 1 within noise, 0 not comparable, 2 unchanged**"
    )
    table = rest.split("### Verdicts")[1].split("### Scores")[0]
    (crippled,) = [line for line in table.splitlines() if line.startswith("| reuters.textcnn |")]
    (seed,) = [line for line in table.splitlines() if line.startswith("| reuters.bert |")]
    assert "| real |" in crippled and "✱" in crippled and "| same |" in crippled  # the fingerprint did not change
    assert "| within noise |" in seed and "✱" not in seed
    b, c = (int(x) for x in re.search(r"\| (\d+) / (\d+) \|", crippled).groups())
    assert b > 3 * c  # the base got many more documents right than the crippled head
    assert crippled.endswith("| same | cpu, isa, precision |")  # the fields the two runs ran differently in
    assert "**Base and head ran differently** — " in rest and "precision: fp32 → bf16" in rest
    assert "Unchanged (identical test predictions, not retested): thucnews.bert, thucnews.textcnn." in rest
    assert not [line for line in table.splitlines() if line.startswith("| thucnews")]  # not retested


def test_a_significant_change_inside_the_bases_seed_range_is_noise(runs: Path) -> None:
    """With several seeds recorded, a change the paired tests call significant is still noise when the head's
    score lies inside the base's seed range (another seed moved it as far); the crippled model, far outside
    its range, stays real."""
    git(runs, "checkout", "-q", "main")
    write_run(runs, "reuters", "bert", SEEDS[1], 0.72)  # bert's second seed scored 0.72: a wide seed spread
    report_commit(runs, "base, bert seeds 0.72-0.9")
    git(runs, "checkout", "-q", "-B", "pr")
    rerun(runs, "reuters", "bert", 2, 0.78)  # 0.9 -> 0.78 on the same documents: McNemar significant
    rerun(runs, "reuters", "textcnn", 1, 0.25)  # crippled: 0.65 -> 0.25, its seeds span 0.62-0.65
    report_commit(runs, "head")
    first, rest = metrics_diff_markdown("main", "pr", runs).split("\n", 1)
    assert first.startswith("**Verdict: 1 row changed for real (1 worse), 1 within noise, 0 not comparable")
    assert first.endswith("inside the base's seed range = within noise).")
    table = rest.split("### Verdicts")[1].split("### Scores")[0]
    (seed,) = [line for line in table.splitlines() if line.startswith("| reuters.bert |")]
    (crippled,) = [line for line in table.splitlines() if line.startswith("| reuters.textcnn |")]
    assert "| within noise (significant, but inside the base's seed range) |" in seed and "✱" in seed
    assert re.search(r"\| 0\.7\d{3}–0\.8\d{3}; 0\.7\d{3}–0\.8\d{3} \(2 seeds\) \|", seed)
    assert "| real |" in crippled and "(2 seeds)" in crippled


def test_runs_on_other_test_documents_are_not_comparable_and_say_why(runs: Path) -> None:
    for model in ("bert", "textcnn"):  # the same documents, 10 of them relabelled by another preparation
        rerun(runs, "reuters", model, 3, 0.8, relabel=10)
    report_commit(runs, "other split")
    first, rest = metrics_diff_markdown("main", "pr", runs).split("\n", 1)
    assert first.startswith("**Verdict: 0 rows changed for real, 0 within noise, 2 not comparable, 2 unchanged**")
    for model in ("bert", "textcnn"):
        assert f"| reuters.{model} | not comparable | the gold labels of 10 test documents differ |" in rest
    assert "Base and head ran alike: cpu: AMD EPYC (avx2) · fp32" in rest


def test_a_base_without_test_predictions_is_not_tested(repo: Path) -> None:
    first = metrics_diff_markdown("main", "pr", repo).split("\n", 1)[0]
    assert first.startswith("**Verdict: not tested** — no reports/outcomes.json at `main` and `pr`")
