"""`textbench report`: collect every (dataset, model) run into one honest comparison.

Writes, each atomically and byte-identical for identical inputs:
    reports/metrics.json      flat scores and their CIs per dataset/model (what `dvc metrics diff` compares)
    reports/cost.json         parameters, train time, inference docs/s, peak memory per dataset/model
    reports/outcomes.json     every run's test predictions, compact (what `textbench diff` tests)
    reports/environment.json  where each run ran: hardware, precision, versions, threads
    reports/comparison.md     Markdown report, figures linked from reports/figures/
    reports/index.html        the same report, self-contained (inline CSS, base64 PNGs)
    reports/figures/<ds>/     the PNG figures
    reports/curves/<ds>/<model>.csv   training curves gathered for `dvc plots show`
    reports/learning_curves/<ds>/<model>.csv   learning curves with bootstrap bands, for `dvc plots show`
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from pipeline import paths
from pipeline.artifacts import LearningPoints
from pipeline.config import Config
from pipeline.io import atomic_dir, atomic_path, write_json
from pipeline.report import aggregate, learning
from pipeline.report.compare import Row, best_model, compare
from pipeline.report.error_analysis import ERROR_ANALYSIS, ErrorAnalysis
from pipeline.report.outcomes import environment_lines, environments, outcomes
from pipeline.report.render import Block, Cell, Details, Heading, Image, Para, Table, markdown, page
from pipeline.report.sections import baseline_line, cost_entry, dataset_blocks, learning_blocks, score_entry

__all__ = ["build_report"]


def build_report(cfg: Config, error_analysis: ErrorAnalysis | None = None) -> list[Path]:
    """Build metrics.json, cost.json, comparison.md, index.html and figures/ under reports/; return their paths."""
    analyse = error_analysis or ERROR_ANALYSIS
    scores: dict[str, dict[str, dict]] = {}
    cost: dict[str, dict[str, dict]] = {}
    summary: list[list[Cell]] = []
    sections: list[Block] = []
    runs: dict[str, list[aggregate.ModelResult]] = {}
    baselines: dict[str, str] = {}
    learning_csvs: dict[Path, str] = {}
    for ds in cfg.benchmark.datasets:
        rows = compare(aggregate.collect(cfg, ds), cfg.report, cfg.seed)
        runs[ds] = [r.run for r in rows]
        scores[ds] = {r.run.model: score_entry(r) for r in rows if r.run.comparable}
        cost[ds] = {r.run.model: cost_entry(r) for r in rows if r.run.comparable}
        summary.append(_summary_row(ds, rows))
        baselines[ds] = baseline_line(rows, cfg.report)
        sections += dataset_blocks(ds, rows, cfg, analyse)
        record = LearningPoints.of(ds) if cfg.curves.models else None
        points = learning.curve_points(record, cfg.report, cfg.seed) if record else []
        sections += learning_blocks(ds, cfg, record, points)
        learning_csvs |= {
            Path(ds, f"{m}.csv"): learning.curve_csv(points, m) for m in dict.fromkeys(p.model for p in points)
        }
    envs = environments(runs)
    blocks: list[Block] = [
        Heading(1, "textbench comparison"),
        Para(
            f"Models: {', '.join(cfg.benchmark.models) or 'none'}. Seeds: {cfg.benchmark.describe_seeds()}. "
            "All scores are on the held-out test split; the best model per dataset is the one with the highest "
            "test macro-F1."
        ),
        *[Para(line) for line in environment_lines(envs, sum(r.ok for rs in runs.values() for r in rs))],
        Table(["Dataset", "Best model", "Accuracy", "Macro-F1", "Models ok", "Converged", "Failed / missing"], summary),
        *[Para(f"{ds}: {line}") for ds, line in baselines.items() if line],
        *sections,
    ]
    return _write(
        {
            paths.metrics_json(): scores,
            paths.cost_json(): cost,
            paths.outcomes_json(): outcomes(runs, cfg.report, cfg.seed).model_dump(),
            paths.environment_json(): envs.model_dump(),
        },
        blocks,
        [r for rs in runs.values() for r in rs if r.ok and r.curves is not None],
        learning_csvs,
    )


def _summary_row(ds: str, rows: list[Row]) -> list[Cell]:
    best = best_model([r.run for r in rows])
    failed = [r.run.model for r in rows if not r.run.ok and r.run.status != "not_comparable"]
    excluded = sum(not r.run.comparable for r in rows) - len(failed)
    return [
        Cell(ds, raw_html=f'<a href="#{escape(ds)}">{escape(ds)}</a>'),
        Cell(best.model if best else "—"),
        Cell(_accuracy(best.metrics) if best else "—"),
        Cell(f"{best.metrics['macro_f1']:.4f}" if best else "—"),
        Cell(f"{sum(r.run.ok for r in rows)}/{len(rows)}"),
        Cell(f"{sum(r.run.ok and r.run.converged for r in rows)}/{len(rows)}"),
        Cell((", ".join(failed) or "none") + (f" ({excluded} not comparable)" if excluded else ""), alert=bool(failed)),
    ]


def _accuracy(metrics: dict) -> str:
    """Accuracy; for a multi-label dataset its subset accuracy and the micro-F1 its papers report."""
    if metrics.get("label_mode") == "multi":
        return f"{metrics['accuracy']:.4f} (subset) · micro-F1 {metrics['micro_f1']:.4f}"
    return f"{metrics['accuracy']:.4f}"


def _write(
    metrics: dict[Path, dict[str, Any]],
    blocks: list[Block],
    runs: list[aggregate.ModelResult],
    learning_csvs: dict[Path, str],
) -> list[Path]:
    """`metrics`: the content of each JSON file (scores, cost, outcomes, environments) by path;
    `learning_csvs`: each learning curve's CSV by its path under reports/learning_curves/."""
    root = paths.reports_root()
    with atomic_dir(root / paths.FIGURES) as tmp:
        for image in _images(blocks):
            target = tmp / Path(image.path).relative_to(paths.FIGURES)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(image.png)
    with atomic_dir(root / paths.CURVES) as tmp:  # one CSV per (ds, model): `dvc plots show` draws the directory
        for run in runs:
            (tmp / run.dataset).mkdir(exist_ok=True)
            (tmp / run.dataset / f"{run.model}.csv").write_bytes((run.dir / paths.CURVES_CSV).read_bytes())
    with atomic_dir(root / paths.LEARNING_CURVES) as tmp:  # `dvc plots show` draws these too
        for rel, text in learning_csvs.items():
            (tmp / rel).parent.mkdir(exist_ok=True)
            (tmp / rel).write_text(text, encoding="utf-8")
    for path, content in metrics.items():
        write_json(path, content)
    outputs = {paths.comparison_md(): markdown(blocks), paths.index_html(): page("textbench comparison", blocks)}
    for path, text in outputs.items():
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return [*metrics, *outputs, root / paths.FIGURES, root / paths.CURVES, root / paths.LEARNING_CURVES]


def _images(blocks: list[Block]) -> list[Image]:
    out: list[Image] = []
    for b in blocks:
        out += [b] if isinstance(b, Image) else _images(b.blocks) if isinstance(b, Details) else []
    return out
