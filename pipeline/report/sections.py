"""One dataset's part of the report as document blocks (tables, figures, notes)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pipeline import paths
from pipeline.artifacts import MULTI_SCORES, SCORES, LearningPoints
from pipeline.config import Config, ReportConfig
from pipeline.errors import TextbenchError
from pipeline.evaluate import ECE_BINS
from pipeline.families import family_of
from pipeline.report import context, learning, plots
from pipeline.report.aggregate import ModelResult
from pipeline.report.compare import Row, best_model
from pipeline.report.data_audit import audit_blocks
from pipeline.report.error_analysis import ErrorAnalysis, confidently_wrong
from pipeline.report.learning import Point
from pipeline.report.render import Block, Bullets, Cell, Details, Heading, Image, Para, Table
from pipeline.report.stats import format_p, p_phrase

# (header, metrics.json key, higher is better, formatter)
Column = tuple[str, str, bool, Callable[[float], str]]


def _score(x: float) -> str:
    return f"{x:.4f}"


def _count(x: float) -> str:
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k" if x >= 1e3 else f"{x:.0f}"


def _seconds(x: float) -> str:
    return f"{x:,.1f}"


def _whole(x: float) -> str:
    return f"{x:,.0f}"


SCORE_COLUMNS: list[Column] = [
    ("Accuracy", "accuracy", True, _score),
    ("Macro-P", "macro_precision", True, _score),
    ("Macro-R", "macro_recall", True, _score),
    ("Macro-F1", "macro_f1", True, _score),
    ("Weighted-P", "weighted_precision", True, _score),
    ("Weighted-R", "weighted_recall", True, _score),
    ("Weighted-F1", "weighted_f1", True, _score),
]
# Multi-label datasets: subset accuracy (metrics.json `accuracy`), micro- and macro-F1 first, Hamming loss last
MULTI_SCORE_COLUMNS: list[Column] = [
    ("Subset acc", "accuracy", True, _score),
    ("Micro-F1", "micro_f1", True, _score),
    ("Macro-F1", "macro_f1", True, _score),
    ("Micro-P", "micro_precision", True, _score),
    ("Micro-R", "micro_recall", True, _score),
    ("Samples-F1", "samples_f1", True, _score),
    ("Weighted-F1", "weighted_f1", True, _score),
    ("Hamming loss", "hamming_loss", False, _score),
]
# What a run costs: reports/cost.json, apart from the scores (identical runs differ in these)
COST_COLUMNS: list[Column] = [
    ("Params", "num_params", False, _count),
    ("Train (s)", "train_time_s", False, _seconds),
    ("Infer (docs/s)", "infer_samples_per_s", True, _whole),
    ("Peak memory (MB)", "peak_memory_mb", False, _whole),
]


def dataset_blocks(ds: str, rows: list[Row], cfg: Config, analyse: ErrorAnalysis) -> list[Block]:
    """Heading, data notes, results, significance, seeds, per-class, figures and errors for `ds`."""
    blocks: list[Block] = [
        Heading(2, f"Dataset: {ds}", anchor=ds),
        Heading(3, "Data and tokenization"),
        Bullets([(line, False) for line in context.card_lines(ds)] + context.tokenizer_lines(ds)),
    ]
    best = best_model([r.run for r in rows])
    blocks += [Heading(3, "Test results"), Para(convergence_line(rows)), main_table(rows)]
    if best is None:
        return blocks + [Para("No comparable model has results on this dataset yet.")]
    labels = best.metrics["labels"]
    multi = _multi(rows)
    scores = (
        f"micro-F1 {best.metrics['micro_f1']:.4f}, macro-F1 {best.metrics['macro_f1']:.4f}, subset accuracy "
        f"{best.metrics['accuracy']:.4f}"
        if multi
        else f"accuracy {best.metrics['accuracy']:.4f}, macro-F1 {best.metrics['macro_f1']:.4f}"
    )
    mode = (
        " Multi-label: every label whose probability reaches the run's threshold is predicted (metrics.json "
        "`threshold`: 0.5, or tuned on dev micro-F1 with `threshold: dev`); subset accuracy = the whole label set "
        "right; Hamming loss = share of wrong (document, label) decisions."
        if multi
        else ""
    )
    blocks.append(
        Para(
            f"Best model by test macro-F1: {best.model} ({scores}).{mode} "
            f"{baseline_line(rows, cfg.report)}Highlighted: best value per "
            "column among comparable rows (highest score/throughput, lowest parameters/time). "
            "Training: 'converged' = stopped on a dev plateau (`train.patience` evaluations without a "
            "gain, an epoch or more since the best; linear baselines: the solver converged at the C chosen "
            "on dev); ⚠ = stopped by a cap "
            "(epochs, max_steps or time_budget_s) while dev was still "
            "improving, so its number may understate the model; 'predicts k of N classes' = the test predictions "
            "never name the other classes, so its macro-F1 sits far below its accuracy."
        )
    )
    blocks += significance_blocks(rows, cfg)
    blocks += audit_blocks(ds, rows, cfg)
    if any(len(cfg.benchmark.seeds_for(r.run.model)) > 1 for r in rows):
        blocks += [Heading(3, f"Seeds ({cfg.benchmark.describe_seeds()})"), seeds_table(rows)]
    blocks += [Heading(3, "Per-class F1"), per_class_table(rows)]
    fig = f"{paths.FIGURES}/{ds}"
    ok_runs = [r.run for r in rows if r.run.comparable]
    blocks.append(
        Image(f"{fig}/per_class_f1.png", plots.per_class_f1(ok_runs, labels), "per-class F1 (models × classes)")
    )
    if plots.needs_cjk_font(labels):
        blocks.append(
            Para(
                "Figures label classes by index (#0 = first class of the per-class table): no CJK font "
                "is installed (apt-get install fonts-noto-cjk or fonts-wqy-microhei)."
            )
        )
    if (png := plots.cost(ok_runs)) is not None:
        blocks += [Heading(3, "Accuracy versus cost"), Image(f"{fig}/cost.png", png, "accuracy vs training time")]
    if (png := plots.curves(ok_runs)) is not None:
        blocks += [Heading(3, "Training curves"), Image(f"{fig}/curves.png", png, "dev macro-F1 and loss per step")]
    blocks += calibration_blocks(fig, ok_runs)
    if multi:  # labels are not exclusive: no confusion matrix; highlights explain one class, so plain text
        return blocks + error_blocks(ds, best.model, cfg.report.error_examples, confidently_wrong)
    confusions = {
        r.model: Image(f"{fig}/confusion_{r.model}.png", plots.confusion(r), f"{r.model} confusion matrix")
        for r in ok_runs
    }
    blocks += [
        Heading(3, f"Confusion matrix of the best model ({best.model})"),
        confusions[best.model],
        Details(f"Confusion matrices of all {len(ok_runs)} models", list(confusions.values())),
    ]
    return blocks + error_blocks(ds, best.model, cfg.report.error_examples, analyse)


RELIABILITY_MODELS = 3  # the reliability diagram draws the best this many models by test macro-F1


def calibration_blocks(fig: str, runs: list[ModelResult]) -> list[Block]:
    """Per comparable run: the dev-fitted temperature and test ECE / Brier / NLL before and after it
    (metrics.json `calibration`), lowest ECE after highlighted; the best models' reliability diagram."""
    rows, older = [], []
    keys = [(stage, key) for key in ("ece", "brier", "nll") for stage in ("before", "after")]
    ece_after = [r.metrics["calibration"]["after"]["ece"] for r in runs if "calibration" in r.metrics]
    for r in runs:
        if "calibration" not in r.metrics:
            older.append(r.model)
            continue
        cal = r.metrics["calibration"]
        cells = [Cell(r.model), Cell(f"{cal['temperature']:.3g}")]
        cells += [
            Cell(_score(cal[stage][key]), best=(stage, key) == ("after", "ece") and cal[stage][key] == min(ece_after))
            for stage, key in keys
        ]
        rows.append(cells)
    if not rows:
        return []
    multi = any(r.multi for r in runs)
    best = sorted((r for r in runs if r.model not in older), key=lambda r: -r.metrics["macro_f1"])[:RELIABILITY_MODELS]
    return [
        Heading(3, "Calibration"),
        Para(
            "Can the confidences be trusted? Each model's logits are divided by one temperature T fitted on dev "
            "NLL (config.json `temperature`, which predict and serve apply; the linear baselines fit theirs "
            "inside the model, so their T here is 1 and before = after). ECE: expected calibration error over "
            f"{ECE_BINS} equal-width confidence bins, "
            + (
                "every (document, label) probability against that label's presence (one T for all labels, "
                "so the 0.5 decisions do not move)"
                if multi
                else "top-label (the highest probability against whether it is the gold class)"
            )
            + "; Brier score and NLL on test; T never changes a ranking, so the scores above are unchanged."
            + (f" No calibration recorded (trained before it existed; retrain): {', '.join(older)}." if older else "")
        ),
        Table(
            ["Model", "T", "ECE before", "ECE after", "Brier before", "Brier after", "NLL before", "NLL after"], rows
        ),
        Image(f"{fig}/reliability.png", plots.reliability(best), "reliability diagram (test, after scaling)"),
    ]


def baseline_line(rows: list[Row], report: ReportConfig) -> str:
    """Whether a simple baseline (family linear: TF-IDF + a linear classifier) is the best comparable row,
    else where the best row stands against the best baseline, in points and with the paired tests'
    p-values (the significance table's); '' without a comparable baseline."""
    best = best_model([r.run for r in rows])
    base = best_model([r.run for r in rows if family_of(r.run.model) == "linear"])
    if best is None or base is None:
        return ""
    if best is base:
        return (
            f"A simple baseline is the best model: {base.model} (TF-IDF + linear classifier) has the highest "
            "macro-F1 on this dataset. "
        )
    acc, f1 = (100 * (best.metrics[k] - base.metrics[k]) for k in ("accuracy", "macro_f1"))
    paired, alpha = next(r.paired for r in rows if r.run is base), 1 - report.confidence
    tests = [
        *(
            [f"macro-F1 {p_phrase(paired.delta_p, alpha, report.bootstrap)}, paired bootstrap"]
            if paired and paired.delta_p is not None
            else []
        ),
        *([f"accuracy {p_phrase(paired.mcnemar.p, alpha)}, McNemar"] if paired and paired.mcnemar else []),
    ]
    return (
        f"Against the best simple baseline ({base.model}, TF-IDF + linear classifier) the best model, "
        f"{best.model}, is {f1:+.1f} macro-F1 and {acc:+.1f} accuracy points"
        + (f" ({'; '.join(tests)})" if tests else "")
        + ". "
    )


def _multi(rows: list[Row]) -> bool:
    return any(r.run.multi for r in rows)


def convergence_line(rows: list[Row]) -> str:
    """How many rows converged, stopped at a cap, are not comparable, or have no result."""
    ok = [r.run for r in rows if r.run.ok]
    converged = sum(r.converged for r in ok)
    capped = [r.model for r in ok if not r.converged]
    excluded = [r.run.model for r in rows if r.run.status == "not_comparable" or (r.run.ok and not r.run.comparable)]
    text = f"{converged} of {len(rows)} models converged (dev plateau)"
    if capped:
        text += f"; stopped by a cap before a plateau (⚠): {', '.join(capped)}"
    if excluded:
        text += f"; not comparable, neither ranked nor tested: {', '.join(excluded)}"
    missing = [r.run.model for r in rows if not r.run.ok and r.run.status != "not_comparable"]
    if missing:
        text += f"; no result: {', '.join(missing)}"
    return text + "."


def main_table(rows: list[Row]) -> Table:
    """Every model: scores and costs, best per column among comparable rows highlighted; how each
    row's training stopped; failed and not comparable rows say why."""
    scores = MULTI_SCORE_COLUMNS if _multi(rows) else SCORE_COLUMNS
    columns = [c for c in scores + COST_COLUMNS if c[1] in SCORES or any(c[1] in r.run.metrics for r in rows)]
    best = {key: _best([_value(r, key) for r in rows if r.run.comparable], higher) for _, key, higher, _ in columns}
    out = []
    for r in rows:
        mode = r.run.metrics.get("encoder_mode")
        cells = [Cell(r.run.model + (f" ({mode})" if mode else ""))]
        for _, key, _, fmt in columns:
            v = _value(r, key)
            cells.append(Cell("—" if v is None else fmt(v), best=r.run.comparable and v is not None and v == best[key]))
        cells.append(Cell(training_text(r.run.metrics) if r.run.ok else "—", alert=r.run.ok and not r.run.converged))
        cells.append(Cell(_status(r), wrap=True, alert=not r.run.comparable or r.run.stale))
        out.append(cells)
    return Table(["Model", *(c[0] for c in columns), "Training", "Status"], out, "test split; primary seed")


def training_text(m: dict[str, Any]) -> str:
    """How a run's training stopped: 'converged (...)' or '⚠ <cap> (...)'."""
    reason = m.get("stop_reason")
    if not reason:
        return "unknown (trained before stop reasons were recorded)"
    if reason == "solver":  # a linear baseline: one solver fit per C of its grid
        grid = m.get("params", {}).get("arch", {}).get("c_grid") or []
        step = int(m.get("best_step") or 0)
        chosen = f"C={grid[step - 1]:g} chosen on dev of {len(grid)}" if 0 < step <= len(grid) else "C chosen on dev"
        if len(grid) > 1 and step in (1, len(grid)):  # the dev optimum may lie beyond the grid: say so
            chosen += f", the grid's {'smallest' if step == 1 else 'largest'}: widen models.<name>.arch.c_grid"
        return f"converged (solver; {chosen})" if m.get("converged") else f"⚠ solver hit max_iter ({chosen})"
    where = f"best step {m.get('best_step')} of {m.get('steps')}, {m.get('evaluations')} dev evals"
    cm = m.get("confusion_matrix") or []
    predicted = sum(any(row[j] for row in cm) for j in range(len(cm)))
    if predicted < len(cm):  # why macro-F1 can sit far below accuracy: the rare classes are never predicted
        where += f"; predicts {predicted} of {len(cm)} classes"
    if reason == "plateau":
        return f"converged ({where})"
    return (
        f"⚠ {dict(time_budget='time budget', max_steps='max_steps', epochs='epochs cap').get(reason, reason)} ({where})"
    )


def significance_blocks(rows: list[Row], cfg: Config) -> list[Block]:
    """Bootstrap CIs and the paired tests of every model against the best one."""
    level, alpha = cfg.report.confidence, 1 - cfg.report.confidence
    boot = cfg.report.bootstrap
    text = (
        f"{level:.0%} percentile bootstrap intervals over {boot} resamples of the test predictions (seed {cfg.seed}). "
        if boot
        else "No bootstrap (report.bootstrap is 0): point estimates only. "
    )
    multi = _multi(rows)
    if multi:
        text += (
            "Each model is compared with the best one on the same test documents by a paired bootstrap of the "
            "macro-F1 difference (same resamples for both models; McNemar's test does not apply to label sets)"
            if boot
            else "No paired test without bootstrap resamples (McNemar's test does not apply to label sets)"
        )
    else:
        text += (
            "Each model is compared with the best one on the same test documents: McNemar's exact test (two-sided "
            "binomial on the discordant pairs, scipy's binomtest; b = only the best model right, c = only "
            "this model right) for accuracy"
            + (", and a paired bootstrap of the macro-F1 difference (same resamples for both models)" if boot else "")
        )
    text += f". ✱ = significant at α = {alpha:.2g}."
    best = best_model([r.run for r in rows])
    out = []
    for r in rows:
        if not r.run.comparable:
            out.append(
                [
                    Cell(r.run.model),
                    *(Cell("—") for _ in range(2)),
                    *(
                        []
                        if multi
                        else [Cell("not comparable" if r.run.ok or r.run.status == "not_comparable" else r.run.status)]
                    ),
                    *(Cell("") for _ in range(2)),
                ]
            )
            continue
        m, p = r.run.metrics, r.paired
        first = (m["micro_f1"], r.micro_f1_ci) if multi else (m["accuracy"], r.accuracy_ci)
        mcnemar = (
            "best"
            if r.run is best
            else "n/a (different test ids)"
            if p is None or p.mcnemar is None
            else f"{p.mcnemar.b}/{p.mcnemar.c}, {p_phrase(p.mcnemar.p, alpha)}"
        )
        out.append(
            [
                Cell(r.run.model),
                Cell(_with_ci(*first)),
                Cell(_with_ci(m["macro_f1"], r.macro_f1_ci)),
                *([] if multi else [Cell(mcnemar)]),
                Cell(
                    "best"
                    if multi and r.run is best
                    else ""
                    if p is None
                    else _with_ci(p.delta_f1, p.delta_ci, signed=True)
                ),
                Cell("" if p is None or p.delta_p is None else format_p(p.delta_p, alpha, cfg.report.bootstrap)),
            ]
        )
    ci = f" [{level:.0%} CI]" if cfg.report.bootstrap else ""
    headers = [
        "Model",
        f"{'Micro-F1' if multi else 'Accuracy'}{ci}",
        f"Macro-F1{ci}",
        *([] if multi else ["McNemar vs best (b/c, p)"]),
        f"Best − model macro-F1{ci}",
        "Paired bootstrap p",
    ]
    return [Heading(3, "Is the difference real?"), Para(text), Table(headers, out)]


def seeds_table(rows: list[Row]) -> Table:
    """Mean ± sample std (ddof=1) over the seeds found for each model."""
    out = []
    for r in rows:
        s = r.seeds
        n = len(r.run.seed_metrics)
        cells = [
            Cell("—" if not s else f"{s[k][0]:.4f}" + (f" ± {s[k][1]:.4f}" if n > 1 else ""))
            for k in ("accuracy", "macro_f1", "weighted_f1")
        ]
        out.append([Cell(r.run.model), Cell(str(n)), *cells])
    return Table(
        ["Model", "Seeds", "Accuracy", "Macro-F1", "Weighted-F1"], out, "mean ± std (sample, ddof=1) over seeds"
    )


def per_class_table(rows: list[Row]) -> Table:
    """Classes × models F1 (best per class highlighted), with the test support."""
    ok = [r.run for r in rows if r.run.comparable]
    labels = best_model(ok).metrics["labels"]  # type: ignore[union-attr]
    out = []
    for label in labels:
        f1s = [r.metrics["per_class"].get(label, {}).get("f1") for r in ok]
        top = _best(f1s, True)
        support = next(
            (r.metrics["per_class"][label].get("support") for r in ok if label in r.metrics["per_class"]), None
        )
        out.append(
            [
                Cell(label),
                Cell("—" if support is None else f"{support:.0f}"),
                *(Cell("—" if v is None else _score(v), best=v is not None and v == top) for v in f1s),
            ]
        )
    return Table(["Class", "Support", *(r.model for r in ok)], out, "test F1 per class")


def error_blocks(ds: str, model: str, k: int, analyse: ErrorAnalysis) -> list[Block]:
    """The best model's most confidently wrong test documents (the error-analysis hook's output)."""
    if k == 0:
        return []
    args = (paths.model_dir(ds, model), paths.report_dir(ds, model) / paths.PREDICTIONS, k)
    note: list[Block] = []
    try:
        items = analyse(*args)
    except TextbenchError as e:  # e.g. highlights need the trained model, which is not here
        items, note = confidently_wrong(*args), [Para(f"Token highlights unavailable ({e}); plain text shown.")]
    out = [
        [
            Cell(str(e["id"])),
            Cell(str(e["label"])),
            Cell(str(e["pred"])),
            Cell(f"{float(e['confidence']):.3f}"),
            Cell(_clip(str(e["text"])), raw_html=e.get("html"), wrap=True),
        ]
        for e in items
    ]
    return [
        Heading(3, f"Most confidently wrong test documents ({model})"),
        *note,
        Table(["Id", "True", "Predicted", "Confidence", "Text"], out) if out else Para("No wrong predictions."),
    ]


def score_entry(row: Row) -> dict[str, Any]:
    """The reports/metrics.json entry of one ok run: scores, CIs, seed mean/std (what `dvc metrics diff` compares)."""
    m = row.run.metrics
    entry: dict[str, Any] = {k: round(float(m[k]), 4) for k in SCORES + (MULTI_SCORES if row.run.multi else ())}
    if row.accuracy_ci and row.macro_f1_ci and row.micro_f1_ci:
        cis = [("accuracy", row.accuracy_ci), ("macro_f1", row.macro_f1_ci)]
        for key, (lo, hi) in cis + ([("micro_f1", row.micro_f1_ci)] if row.run.multi else []):
            entry[f"{key}_ci_low"], entry[f"{key}_ci_high"] = round(lo, 4), round(hi, 4)
    for key, (mean, std) in (row.seeds if len(row.run.seed_metrics) > 1 else {}).items():
        entry[f"{key}_mean"], entry[f"{key}_std"] = round(mean, 4), round(std, 4)
    return entry


def cost_entry(row: Row) -> dict[str, Any]:
    """The reports/cost.json entry of one ok run: the cost columns it has (counts exact, the rest to 2 decimals)."""
    entry: dict[str, Any] = {}
    for _, key, _, _ in COST_COLUMNS:
        v = _value(row, key)
        if v is not None:
            entry[key] = row.run.metrics[key] if isinstance(row.run.metrics[key], int) else round(v, 2)
    return entry


def _value(r: Row, key: str) -> float | None:
    v = r.run.metrics.get(key) if r.run.ok else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _best(values: list[float | None], higher: bool) -> float | None:
    """The value to highlight; None when fewer than two distinct values (nothing stands out)."""
    present = [v for v in values if v is not None]
    return (max if higher else min)(present) if len(set(present)) > 1 else None


def _status(r: Row) -> str:
    if not r.run.ok:
        return f"{r.run.status.replace('_', ' ')}: {r.run.error}"
    if not r.run.comparable:
        return f"not comparable: {r.run.metrics['not_comparable']}"
    return "ok (stale: status.json fingerprint differs from metrics.json)" if r.run.stale else "ok"


def _with_ci(point: float, ci: tuple[float, float] | None, signed: bool = False) -> str:
    fmt = "+.4f" if signed else ".4f"
    return f"{point:{fmt}}" + (f" [{ci[0]:{fmt}}, {ci[1]:{fmt}}]" if ci else "")


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


def learning_blocks(ds: str, cfg: Config, record: LearningPoints | None, points: list[Point]) -> list[Block]:
    """The learning curves of `ds` (reports/learning/<ds>/points.json): figure with bootstrap bands and a
    table of test scores per model and train share; a line saying how to make them when absent."""
    if not cfg.curves.models:
        return []
    if record is None:
        return [
            Heading(3, "Learning curves"),
            Para(f"No learning curves yet: run `textbench curves -d {ds}` (the DVC `curves` stage)."),
        ]
    key = learning.metric(record)
    name = "micro-F1 (multi-label: what its papers report)" if key == "micro_f1" else "macro-F1"
    blocks: list[Block] = [
        Heading(3, "Learning curves"),
        Para(
            f"Test {name} of each model trained by the trainer itself on stratified, seeded shares of the "
            f"{record.train_docs} train documents (`curves.fractions`; every class keeps at least one document; "
            "a larger share holds every document of a smaller one); dev and test stay whole. Bands: "
            f"{cfg.report.confidence:.0%} bootstrap intervals over the {record.n} test documents, the same "
            f"resamples for every point (paired). The whole-train points are the benchmark's own runs where "
            f"their fingerprints match. Cost: {record.total_s:.0f} s for {len(record.points)} points."
            + "".join(f" {m} skipped: {why}." for m, why in record.skipped.items())
        ),
    ]
    if not points:
        return blocks
    shares = list(dict.fromkeys((p.fraction, p.train_docs) for p in points if p.model == points[0].model))
    cells = {(p.model, p.fraction): p for p in points}
    rows = [
        [Cell(m)]
        + [
            Cell(_with_ci(c.f1, (c.lo, c.hi) if cfg.report.bootstrap else None) if (c := cells.get((m, f))) else "—")
            for f, _ in shares
        ]
        for m in dict.fromkeys(p.model for p in points)
    ]
    return blocks + [
        Image(
            f"{paths.FIGURES}/{ds}/learning_curves.png", plots.learning(points, key), f"test {name} vs train documents"
        ),
        Table(["Model", *(f"{f:.0%} ({n} docs)" for f, n in shares)], rows),
    ]
