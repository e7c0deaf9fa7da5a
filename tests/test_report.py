"""The comparison report on generated runs: 2 datasets × 3 models (one failed), 2 seeds.

Each run's metrics are computed from generated test predictions with pipeline.evaluate, exactly
as the trainer does, so the report's bootstrap and paired tests see consistent inputs.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import base_params, write_params
from pipeline import paths
from pipeline.config import load_config
from pipeline.errors import TextbenchError
from pipeline.evaluate import classification_metrics, predictions_table
from pipeline.io import atomic_dir, sha256_file, write_json
from pipeline.report import aggregate, stats
from pipeline.report.build import build_report
from pipeline.report.compare import compare

REPO = Path(__file__).resolve().parents[1]
LABELS = {"reuters": ["acq", "crude", "earn", "grain", "money-fx", "trade"], "thucnews": ["体育", "科技", "财经"]}
ACCURACY = {"bert": 0.9, "textcnn": 0.65}  # per model; fasttext fails
SEEDS = (42, 7)
N_TEST = 240


def write_run(root: Path, ds: str, model: str, seed: int, accuracy: float) -> dict[str, Any]:
    """Report-dir files for one (dataset, model, seed) from generated predictions."""
    labels = LABELS[ds]
    rng = np.random.default_rng([seed, len(ds)])  # same test labels for every model of a dataset
    y_true = rng.integers(0, len(labels), N_TEST)
    rng = np.random.default_rng([seed, len(ds), len(model)])
    wrong = rng.random(N_TEST) > accuracy
    y_pred = np.where(wrong, (y_true + rng.integers(1, len(labels), N_TEST)) % len(labels), y_true)
    probs = np.full((N_TEST, len(labels)), 0.0)
    conf = rng.uniform(0.5, 0.99, N_TEST)
    probs[:] = ((1 - conf) / (len(labels) - 1))[:, None]
    probs[np.arange(N_TEST), y_pred] = conf
    base = root / "reports" / ds / model
    rdir = base if seed == SEEDS[0] else base / "seeds" / str(seed)
    rdir.mkdir(parents=True, exist_ok=True)
    ids = [f"{ds}-{i:04d}" for i in range(N_TEST)]
    texts = [f"document {i} about {labels[t]}" for i, t in enumerate(y_true)]
    pq.write_table(predictions_table(ids, texts, y_true, probs, labels), rdir / "predictions.parquet")
    metrics = classification_metrics(y_true, y_pred, labels) | {
        "dataset": ds,
        "model": model,
        "seed": seed,
        "params": {"arch": {}, "train": {"lr": 1e-3}},
        "num_params": 110_000 if model == "textcnn" else 22_700_000,
        "train_time_s": 12.5 if model == "textcnn" else 340.0,
        "train_samples_per_s": 100.0,
        "infer_samples_per_s": 5000.0 if model == "textcnn" else 250.0,
        "peak_memory_mb": 900.0,
        "best_step": 300,
        "fingerprint": f"fp-{model}",
    }
    write_json(rdir / "metrics.json", metrics)
    steps = np.arange(0, 600, 100)
    (rdir / "curves.csv").write_text(
        "step,train_loss,dev_loss,dev_accuracy,dev_macro_f1\n"
        + "".join(
            f"{s},{2 / (1 + s / 100):.4f},{2.2 / (1 + s / 120):.4f},{accuracy * (1 - 0.5 ** (1 + s / 100)):.4f},"
            f"{accuracy * (1 - 0.5 ** (1 + s / 100)) - 0.02:.4f}\n"
            for s in steps
        ),
        encoding="utf-8",
    )
    write_json(
        status_file(root, ds, model), {"status": "ok", "error": "", "fingerprint": f"fp-{model}", "wall_time_s": 1.0}
    )
    return metrics


def status_file(root: Path, ds: str, model: str) -> Path:
    """The flow's status of the first seed's job (paths.job_status under `root`)."""
    return root / "reports" / ds / ".status" / model / f"{SEEDS[0]}.json"


def make_project(root: Path, bootstrap: int = 200, datasets: tuple[str, ...] = tuple(LABELS)) -> None:
    """params.yaml naming 3 models and 2 seeds; runs, a card and a tokenizer meta under root."""
    params = base_params()
    params["benchmark"] = {"datasets": list(datasets), "models": ["bert", "textcnn", "fasttext"], "seeds": list(SEEDS)}
    params["report"] = {"bootstrap": bootstrap, "confidence": 0.95, "error_examples": 5}
    write_params(root, params)
    for ds in datasets:
        for model, acc in ACCURACY.items():
            for i, seed in enumerate(SEEDS):
                write_run(root, ds, model, seed, acc - 0.03 * i)
        write_json(
            status_file(root, ds, "fasttext"),
            {
                "status": "failed",
                "error": "RuntimeError: loss became NaN at step 40",
                "fingerprint": "x",
                "wall_time_s": 3.0,
            },
        )
    write_json(
        root / "data" / "prepared" / "reuters" / "card.json",
        {
            "labels": LABELS["reuters"],
            "counts": {"train": {"acq": 1000, "earn": 2000}, "dev": {"acq": 100}, "test": {"acq": 50}},
            "dropped_classes": [
                {"label": "cotton", "docs": 3, "reason": "fewer than 10"},
                {"label": "zinc", "docs": 5, "reason": "fewer than 10"},
            ],
            "duplicates_removed": {"train": 12, "dev": 0, "test": 0},
        },
    )
    write_json(
        root / "data" / "tokenized" / "thucnews" / "subword" / "meta.json",
        {
            "scheme": "subword",
            "encoder": "minilm",
            "max_len": 48,
            "labels": LABELS["thucnews"],
            "language": "zh",
            "vocab_size": 30522,
            "pad_id": 0,
            "fingerprint": "fp",
            "splits": {
                "train": {"unk_rate": 0.62, "truncated_share": 0.0},
                "test": {"unk_rate": 0.61, "truncated_share": 0.01},
            },
        },
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    make_project(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEXTBENCH_ROOT", str(root))
        build_report(load_config(root / "params.yaml"))
    return root


def test_metrics_json_holds_the_scores_of_every_finished_run_and_cost_json_the_rest(built: Path) -> None:
    metrics = json.loads((built / "reports" / "metrics.json").read_text())
    cost = json.loads((built / "reports" / "cost.json").read_text())
    assert sorted(metrics) == sorted(cost) == ["reuters", "thucnews"]
    for ds in metrics:
        assert sorted(metrics[ds]) == sorted(cost[ds]) == ["bert", "textcnn"]  # the failed model has neither
        run = json.loads((built / "reports" / ds / "bert" / "metrics.json").read_text())
        entry = metrics[ds]["bert"]
        for key in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "weighted_f1"):
            assert entry[key] == round(run[key], 4)
        assert not [k for k in entry if k.endswith(("_s", "_mb")) or "params" in k]  # scores only
        assert cost[ds]["bert"] == {
            "num_params": 22_700_000,
            "train_time_s": 340.0,
            "infer_samples_per_s": 250.0,
            "peak_memory_mb": 900.0,
        }
    md = (built / "reports" / "comparison.md").read_text()
    assert "| Params | Train (s) | Infer (docs/s) | Peak memory (MB) |" in md  # the cost is still in the report


def test_confidence_intervals_contain_the_point_estimate(built: Path) -> None:
    metrics = json.loads((built / "reports" / "metrics.json").read_text())
    for ds, models in metrics.items():
        for model, m in models.items():
            for key in ("accuracy", "macro_f1"):
                lo, hi = m[f"{key}_ci_low"], m[f"{key}_ci_high"]
                assert lo < m[key] < hi and hi - lo < 0.25, (ds, model, key)


def test_seed_mean_and_std(built: Path) -> None:
    metrics = json.loads((built / "reports" / "metrics.json").read_text())
    runs = [
        json.loads(p.read_text())
        for p in (
            built / "reports/reuters/textcnn/metrics.json",
            built / "reports/reuters/textcnn/seeds/7/metrics.json",
        )
    ]
    acc = [r["accuracy"] for r in runs]
    assert metrics["reuters"]["textcnn"]["accuracy_mean"] == round(statistics.mean(acc), 4)
    assert metrics["reuters"]["textcnn"]["accuracy_std"] == round(statistics.stdev(acc), 4)
    md = (built / "reports" / "comparison.md").read_text()
    assert f"{statistics.mean(acc):.4f} ± {statistics.stdev(acc):.4f}" in md


def test_markdown_lists_every_model_and_the_failed_ones_error(built: Path) -> None:
    md = (built / "reports" / "comparison.md").read_text()
    for ds in LABELS:
        section = md.split(f"## Dataset: {ds}")[1].split("## Dataset:")[0]
        table = section.split("### Test results")[1].split("###")[0]
        for model in ("bert", "textcnn"):
            assert re.search(rf"^\| {model} \| (\*\*)?0\.\d{{4}}", table, re.M), model
        assert re.search(r"^\| fasttext \|.*failed: RuntimeError: loss became NaN at step 40 \|$", table, re.M)
        assert "| **0.9" in table or "**0.8" in table  # the best accuracy is highlighted
        assert re.search(r"^\| textcnn \|.* p = [0-9.e-]+ ✱ \|", section, re.M)  # clearly worse: significant
    assert "dropped_classes: cotton (3), zinc (5) — fewer than 10" in md and "train: 3,000 documents" in md
    assert "⚠ **subword (minilm): [UNK] share of tokens: train 62.0%, test 61.0% — above 10%" in md
    assert "subword (minilm): max_len 48 (set in params.yaml); documents truncated to it: train 0.0%, test 1.0%" in md
    assert md.count("![") >= 10 and "figures/reuters/confusion_bert.png" in md


def test_mcnemar_separates_a_worse_model_from_an_identical_one(built: Path) -> None:
    rng = np.random.default_rng(0)
    correct = rng.random(300) < 0.9
    assert stats.mcnemar(correct, correct).p == 1.0
    near = correct.copy()
    near[:3] = ~near[:3]
    assert stats.mcnemar(correct, near).p > 0.05
    from scipy.stats import binomtest  # the reference: exact two-sided binomial test of b against (b + c) / 2

    assert stats.mcnemar(np.array([True] * 30 + [False] * 12), np.array([False] * 30 + [True] * 12)).p == pytest.approx(
        binomtest(30, 42, 0.5).pvalue
    )
    big_a, big_b = np.repeat([True, False], [6000, 6300]), np.repeat([False, True], [6000, 6300])  # exact at any size
    assert stats.mcnemar(big_a, big_b).p == pytest.approx(binomtest(6000, 12300, 0.5).pvalue, rel=1e-12)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEXTBENCH_ROOT", str(built))
        cfg = load_config(built / "params.yaml")
        rows = compare(aggregate.collect(cfg, "reuters"), cfg.report, cfg.seed)
    by_model = {r.run.model: r for r in rows}
    assert by_model["bert"].paired is None  # the best model is the reference
    paired = by_model["textcnn"].paired
    assert paired is not None and paired.mcnemar.p < 0.05 and paired.delta_p < 0.05 and paired.delta_ci[0] > 0
    assert by_model["fasttext"].run.status == "failed"


def test_bootstrap_macro_f1_matches_sklearn_on_the_full_sample() -> None:
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    y_pred[:5] = 0  # class 3 never predicted in part of the data: zero_division cases
    ref = classification_metrics(y_true, y_pred, ["a", "b", "c", "d", "e"])["macro_f1"]  # "e" absent: F1 0
    assert stats.macro_f1(y_true, y_pred, 5) == pytest.approx(ref)


def test_html_is_self_contained_with_tables_and_images(built: Path) -> None:
    page = (built / "reports" / "index.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "<link" not in page and "<script" not in page
    assert page.count('<img src="data:image/png;base64,') >= 12
    assert page.count("<table>") >= 2 * 4 + 1
    assert "failed: RuntimeError: loss became NaN at step 40" in page
    assert "<details>" in page


@pytest.mark.slow
def test_outputs_are_byte_identical_on_rebuild(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "again"
    shutil.copytree(built, copy)
    written = ("metrics.json", "cost.json", "outcomes.json", "environment.json", "comparison.md", "index.html")
    for name in written:
        (copy / "reports" / name).unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEXTBENCH_ROOT", str(copy))
        build_report(load_config(copy / "params.yaml"))
    for name in (*written, "figures/reuters/cost.png"):
        assert sha256_file(copy / "reports" / name) == sha256_file(built / "reports" / name), name


@pytest.mark.slow
def test_error_analysis_hook_renders_highlights(project: Path) -> None:
    make_project(project, bootstrap=0, datasets=("reuters",))
    seen = []

    def highlighted(model_dir: Path, predictions: Path, k: int) -> list[dict[str, Any]]:
        seen.append((model_dir.parts[-2:], k))
        return [
            {
                "id": "x1",
                "label": "acq",
                "pred": "earn",
                "confidence": 0.99,
                "text": "oil <up>",
                "html": "oil <mark>up</mark>",
            }
        ]

    build_report(load_config("params.yaml"), error_analysis=highlighted)
    page = (project / "reports" / "index.html").read_text()
    md = (project / "reports" / "comparison.md").read_text()
    assert seen == [(("reuters", "bert"), 5)]
    assert "oil <mark>up</mark>" in page and "| x1 | acq | earn | 0.990 | oil <up> |" in md
    assert "CI]" not in md and "nan" not in md and "| Accuracy |" in md  # no bootstrap: no CIs, points stay
    assert "No bootstrap (report.bootstrap is 0)" in md and "paired bootstrap" not in md


def test_default_error_analysis_lists_confident_mistakes(built: Path) -> None:
    md = (built / "reports" / "comparison.md").read_text()
    section = md.split("### Most confidently wrong test documents (bert)")[1].split("##")[0]
    confidences = [float(c) for c in re.findall(r"^\| reuters-\d+ \| [^|]+ \| [^|]+ \| ([0-9.]+) \|", section, re.M)]
    assert len(confidences) == 5 and confidences == sorted(confidences, reverse=True)


@pytest.mark.slow
def test_missing_and_corrupt_runs(project: Path) -> None:
    make_project(project, bootstrap=0, datasets=("thucnews",))
    shutil.rmtree(project / "reports" / "thucnews" / "textcnn")
    build_report(load_config("params.yaml"))
    md = (project / "reports" / "comparison.md").read_text()
    assert re.search(r"^\| textcnn \|.*missing: no results in .*textcnn: run `textbench train -d thucnews", md, re.M)
    (project / "reports" / "thucnews" / "bert" / "metrics.json").write_text("{not json")
    with pytest.raises(TextbenchError, match=r"thucnews/bert/metrics.json: not valid JSON"):
        build_report(load_config("params.yaml"))
    assert "textcnn |" in (project / "reports" / "comparison.md").read_text()  # earlier report left intact


def test_a_retrain_swapping_the_report_dir_keeps_the_flows_status(project: Path) -> None:
    """The flow's status lies apart from the report dir the trainer replaces whole: a failed job keeps
    its error line in the report over earlier results, until a later training writes newer ones."""
    make_project(project, bootstrap=0, datasets=("thucnews",))
    failed = {"status": "failed", "error": "error: training diverged", "fingerprint": "x", "wall_time_s": 1.0}
    write_json(status_file(project, "thucnews", "textcnn"), failed)
    build_report(load_config("params.yaml"))
    md = (project / "reports" / "comparison.md").read_text()
    assert re.search(r"^\| textcnn \|.*failed: error: training diverged \|$", md, re.M)

    rdir = project / "reports" / "thucnews" / "textcnn"
    metrics = json.loads((rdir / "metrics.json").read_text())
    with atomic_dir(rdir, keep=(paths.SEEDS,)) as tmp:  # as `textbench train` swaps in a new report dir
        for f in rdir.iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
        write_json(tmp / "metrics.json", metrics | {"fingerprint": "fp-new"})
    assert json.loads(status_file(project, "thucnews", "textcnn").read_text()) == failed
    build_report(load_config("params.yaml"))
    md = (project / "reports" / "comparison.md").read_text()
    assert "training diverged" not in md and re.search(r"^\| textcnn \| (\*\*)?0\.\d{4}", md, re.M)


@pytest.mark.slow
def test_cli_report_writes_the_outputs(project: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    make_project(project, bootstrap=0, datasets=("reuters",))
    result = CliRunner().invoke(app, ["report", "--params", "params.yaml"])
    assert result.exit_code == 0, result.output
    for name in ("metrics.json", "cost.json", "comparison.md", "index.html", "figures"):
        assert name in result.output and (project / "reports" / name).exists()


def test_report_opens_in_headless_chromium(built: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    from conftest import CHROMIUM_ARGS

    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((built / "reports" / "index.html").as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(out / "report.png"), full_page=True)
        widths = page.eval_on_selector_all("figure img", "els => els.map(e => e.naturalWidth)")
        tables = page.eval_on_selector_all("table", "els => els.length")
        headings = page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)")
        browser.close()
    assert len(widths) >= 12 and all(w > 0 for w in widths)
    assert tables >= 9 and headings == ["Dataset: reuters", "Dataset: thucnews"]


@pytest.mark.slow  # three dvc processes
def test_dvc_reads_the_metrics_and_plots_declarations(built: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = tmp_path / "repo"
    shutil.copytree(built, repo)
    shutil.copy(REPO / "dvc.yaml", repo / "dvc.yaml")
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*dvc, "init", "-q"], cwd=repo, check=True)
    shown = subprocess.run([*dvc, "metrics", "show", "--json"], cwd=repo, check=True, capture_output=True, text=True)
    (rev,) = json.loads(shown.stdout).values()  # the workspace of a repo without commits
    metrics = rev["data"]["reports/metrics.json"]["data"]
    assert (
        metrics["reuters"]["bert"]["macro_f1"]
        == json.loads((built / "reports/metrics.json").read_text())["reuters"]["bert"]["macro_f1"]
    )
    assert rev["data"]["reports/cost.json"]["data"]["reuters"]["bert"]["train_time_s"] == 340.0
    plotted = subprocess.run([*dvc, "plots", "show", "--json"], cwd=repo, check=True, capture_output=True, text=True)
    data = json.loads(plotted.stdout)
    assert not data.get("errors")
    assert {"reports/curves/reuters/bert.csv", "reports/curves/thucnews/textcnn.csv"} <= set(data["data"])


@pytest.mark.slow
def test_training_column_and_not_comparable_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """How each row stopped is shown next to its numbers; a not comparable row (its encoder reads most
    tokens as [UNK]) is shown with its reason but neither ranked, highlighted, tested nor in metrics.json."""
    make_project(tmp_path, bootstrap=50)
    monkeypatch.setenv("TEXTBENCH_ROOT", str(tmp_path))
    for ds in LABELS:
        for model, reason in (("bert", "plateau"), ("textcnn", "time_budget")):
            path = tmp_path / "reports" / ds / model / "metrics.json"
            m = json.loads(path.read_text()) | {
                "stop_reason": reason,
                "converged": reason == "plateau",
                "steps": 900,
                "evaluations": 9,
                "encoder_mode": "frozen features" if model == "bert" else None,
            }
            if ds == "thucnews" and model == "bert":
                m["not_comparable"] = (
                    "encoder 'minilm' leaves 62% of train tokens as [UNK]; set datasets.thucnews.encoder"
                )
            write_json(path, m)
    build_report(load_config(tmp_path / "params.yaml"))
    md = (tmp_path / "reports" / "comparison.md").read_text(encoding="utf-8")
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert set(metrics["reuters"]) == {"bert", "textcnn"} and set(metrics["thucnews"]) == {"textcnn"}
    thuc = md[md.index("## Dataset: thucnews") :]
    assert "Best model by test macro-F1: textcnn" in thuc  # bert scores higher but is not comparable
    assert "not comparable: encoder 'minilm' leaves 62% of train tokens as [UNK]" in thuc
    assert "1 of 3 models converged (dev plateau)" in md[md.index("## Dataset: reuters") :]
    assert "1 of 3 models converged" in thuc and "not comparable, neither ranked nor tested: bert" in thuc
    assert "converged (best step 300 of 900, 9 dev evals)" in md and "⚠ time budget (best step 300" in md
    assert "bert (frozen features)" in md
    sig = thuc[thuc.index("Is the difference real?") :]
    bert_row = next(line for line in sig.splitlines() if line.startswith("| bert "))
    assert "not comparable" in bert_row and "✱" not in bert_row


def test_training_text_says_how_many_classes_a_model_predicts() -> None:
    """A converged row whose macro-F1 sits far below its accuracy says why: some classes are never predicted."""
    from pipeline.report.sections import training_text

    m = {
        "stop_reason": "plateau",
        "best_step": 5,
        "steps": 9,
        "evaluations": 3,
        "confusion_matrix": [[4, 0, 0], [2, 0, 1], [3, 0, 0]],
    }
    assert training_text(m) == "converged (best step 5 of 9, 3 dev evals; predicts 2 of 3 classes)"
    m["confusion_matrix"] = [[4, 0, 0], [0, 1, 1], [0, 0, 3]]
    assert training_text(m) == "converged (best step 5 of 9, 3 dev evals)"


def test_every_p_value_is_printed_by_the_one_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A baseline far below the best model has bootstrap p = 0 and McNemar p ~ 1e-30: the summary
    sentence, the significance table and the diff all print them as the table does (`< 2/B`, e-notation),
    never `p = 0`."""
    from pipeline.artifacts import Outcomes
    from pipeline.metrics_diff import _test

    make_project(tmp_path, datasets=("reuters",))
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["benchmark"]["models"].append("tfidf_svm")
    write_params(tmp_path, params)
    for seed in SEEDS:
        write_run(tmp_path, "reuters", "tfidf_svm", seed, 0.3)
    monkeypatch.setenv("TEXTBENCH_ROOT", str(tmp_path))
    build_report(load_config(tmp_path / "params.yaml"))
    floor = "< 0.01 ✱"  # 200 resamples: a bootstrap p is never below 2/200
    md = (tmp_path / "reports" / "comparison.md").read_text()
    html = (tmp_path / "reports" / "index.html").read_text()
    sentence = next(line for line in md.splitlines() if "Against the best simple baseline (tfidf_svm" in line)
    assert f"macro-F1 p {floor}, paired bootstrap" in sentence
    (row,) = re.findall(r"^\| tfidf_svm \| 0\.\d{4} \[.*", md.split("### Is the difference real?")[1], re.M)
    assert row.endswith(f"| {floor} |")
    mcnemar = re.search(r"accuracy p = (\S+ ✱), McNemar", sentence).group(1)
    assert re.fullmatch(r"\d\.\de-\d+ ✱", mcnemar) and f", p = {mcnemar} |" in row  # sentence = table
    outcomes = Outcomes.read(tmp_path / "reports" / "outcomes.json", "")
    ds = outcomes.datasets["reuters"]
    cells = _test("reuters.bert", ds, (ds.models["bert"], ds.models["tfidf_svm"]), outcomes, "changed", "no")
    assert cells.cells[4] == floor and re.fullmatch(r"\d\.\de-\d+ ✱", cells.cells[2])
    for text in (md, html):
        written = re.findall(r"\bp (=|<) ([0-9.e+-]+)", text)
        assert written and not [v for _, v in written if float(v) == 0], written
        assert all(re.fullmatch(r"\d\.\d{4}|\d\.\de-\d+", v) for op, v in written if op == "="), written


def test_seeds_per_model_show_their_spread_and_go_to_outcomes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`benchmark.seeds` per model: only textcnn has two seeds; the seed table gives it mean ± std and
    bert its one value, and outcomes.json records textcnn's seed scores (what `textbench diff` weighs)."""
    make_project(tmp_path, datasets=("reuters",))
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["benchmark"]["seeds"] = {"default": [SEEDS[0]], "models": {"textcnn": list(SEEDS)}}
    write_params(tmp_path, params)
    monkeypatch.setenv("TEXTBENCH_ROOT", str(tmp_path))
    build_report(load_config(tmp_path / "params.yaml"))
    md = (tmp_path / "reports" / "comparison.md").read_text()
    assert f"Seeds: {SEEDS[0]}; textcnn: {SEEDS[0]}, {SEEDS[1]}." in md
    table = md.split(f"### Seeds ({SEEDS[0]}; textcnn: {SEEDS[0]}, {SEEDS[1]})")[1].split("###")[0]
    assert re.search(r"^\| textcnn \| 2 \| 0\.\d{4} ± 0\.\d{4} \|", table, re.M)
    assert re.search(r"^\| bert \| 1 \| 0\.\d{4} \| 0\.\d{4} \|", table, re.M)
    models = json.loads((tmp_path / "reports" / "outcomes.json").read_text())["datasets"]["reuters"]["models"]
    acc = [
        json.loads(p.read_text())["accuracy"]
        for p in sorted((tmp_path / "reports/reuters/textcnn").rglob("metrics.json"))
    ]
    assert sorted(s["accuracy"] for s in models["textcnn"]["seeds"].values()) == sorted(acc)
    assert not models["bert"]["seeds"]
