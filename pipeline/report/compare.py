"""Per-dataset comparison: the best model, CIs, paired tests against it, and seed spread.

The best model is the one with the highest test macro-F1 (ties: accuracy, then name) among the
comparable runs (a run flagged `not_comparable`, e.g. an encoder that reads most tokens as [UNK], is
neither ranked nor tested). Each other comparable model is compared with it on the same test documents
(joined by id):
  * McNemar's exact test on the paired correct/incorrect table (accuracy difference);
  * a paired bootstrap of the macro-F1 difference (same resamples for both models).
Multi-label datasets rank by macro-F1 too, and are tested by the paired bootstrap only: McNemar's
test assumes one right-or-wrong outcome per document, which label sets do not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.config import ReportConfig
from pipeline.report import stats
from pipeline.report.aggregate import ModelResult


@dataclass(frozen=True)
class Paired:
    """A model against the best one on the same test ids."""

    mcnemar: stats.McNemar | None  # None for multi-label runs
    delta_f1: float  # best − this model, macro-F1 on the full test set
    delta_ci: tuple[float, float] | None  # None without bootstrap resamples
    delta_p: float | None


@dataclass(frozen=True)
class Row:
    """Everything the tables say about one model."""

    run: ModelResult
    accuracy_ci: tuple[float, float] | None = None
    macro_f1_ci: tuple[float, float] | None = None
    micro_f1_ci: tuple[float, float] | None = None
    paired: Paired | None = None  # None for the best model itself and for unpaired test sets
    seeds: dict[str, tuple[float, float]] | None = None  # metric → (mean, std) over seeds


def rank(metrics: Mapping[str, Any]) -> tuple[float, float]:
    """How the runs of one dataset rank, highest best: test macro-F1, then accuracy (ties after that: the
    first model by name). The report's best model, and the model the serving page opens on."""
    return float(metrics["macro_f1"]), float(metrics["accuracy"])


def best_model(runs: list[ModelResult]) -> ModelResult | None:
    """The comparable ok run that ranks first (`rank`)."""
    ok = sorted((r for r in runs if r.comparable), key=lambda r: r.model)  # max() keeps the first of equals
    return max(ok, key=lambda r: rank(r.metrics), default=None)


def compare(runs: list[ModelResult], cfg: ReportConfig, seed: int) -> list[Row]:
    """One Row per run (failed runs get an empty Row), in the runs' order."""
    best = best_model(runs)
    boots = {r.model: _bootstrap(r, cfg.bootstrap, seed) for r in runs if r.ok}
    rows = []
    for run in runs:
        if not run.ok:
            rows.append(Row(run))
            continue
        boot = boots[run.model]
        resampled = len(boot.accuracy) > 0
        rows.append(
            Row(
                run,
                accuracy_ci=stats.interval(boot.accuracy, cfg.confidence) if resampled else None,
                macro_f1_ci=stats.interval(boot.macro_f1, cfg.confidence) if resampled else None,
                micro_f1_ci=stats.interval(boot.micro_f1, cfg.confidence) if resampled else None,
                paired=_paired(best, run, boots, cfg)
                if best is not None and run is not best and run.comparable
                else None,
                seeds=_seeds(run),
            )
        )
    return rows


def _bootstrap(run: ModelResult, n_boot: int, seed: int) -> stats.Bootstrap:
    return stats.bootstrap(*run.targets(), len(run.metrics["labels"]), n_boot, seed)


def _paired(best: ModelResult, run: ModelResult, boots: dict[str, stats.Bootstrap], cfg: ReportConfig) -> Paired | None:
    a, b = best.predictions, run.predictions
    assert a is not None and b is not None
    if not np.array_equal(a["id"].to_numpy(), b["id"].to_numpy()) or best.metrics["labels"] != run.metrics["labels"]:
        return None  # different test sets: no paired comparison is possible
    if best.multi != run.multi:
        return None
    (gold, pred_a), (_, pred_b) = best.targets(), run.targets()
    test = None if run.multi else stats.mcnemar(gold == pred_a, gold == pred_b)
    n_classes = len(run.metrics["labels"])
    delta = stats.macro_f1(gold, pred_a, n_classes) - stats.macro_f1(gold, pred_b, n_classes)
    diff = boots[best.model].macro_f1 - boots[run.model].macro_f1
    if len(diff) == 0:
        return Paired(test, delta, None, None)
    return Paired(test, delta, stats.interval(diff, cfg.confidence), stats.paired_bootstrap_p(diff))


def _seeds(run: ModelResult) -> dict[str, tuple[float, float]] | None:
    if not run.seed_metrics:
        return None
    return {
        k: stats.mean_std([float(m[k]) for m in run.seed_metrics.values()])
        for k in ("accuracy", "macro_f1", "weighted_f1")
    }
