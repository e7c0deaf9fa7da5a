"""Learning curves in the report: each (model, train share) fit's test score with a bootstrap band.

The scores come from reports/learning/<ds>/points.json (pipeline/curves.py). Single-label: macro-F1;
multi-label: micro-F1 (what its papers report; macro-F1 over rare labels at a 1 % share is mostly
labels never seen). Every point is resampled with the same seeded bootstrap draws of the test documents
(pipeline/report/stats.py), so the bands are paired: two points' resamples score the same documents.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.artifacts import LearningPoints
from pipeline.config import ReportConfig
from pipeline.report.stats import bootstrap, f1_scores, interval


@dataclass(frozen=True)
class Point:
    model: str
    fraction: float
    train_docs: int
    classes_in_train: int
    fit_s: float
    f1: float
    lo: float  # bootstrap interval at report.confidence (= f1 when report.bootstrap is 0)
    hi: float


def metric(record: LearningPoints) -> str:
    """The score the curves show: macro_f1, or micro_f1 for a multi-label dataset."""
    return "micro_f1" if record.label_mode == "multi" else "macro_f1"


def curve_points(record: LearningPoints, rc: ReportConfig, seed: int) -> list[Point]:
    """Every fit's test score and band, in points.json order (by model, then share)."""
    gold, n_classes, key = record.decisions(record.gold), len(record.labels), metric(record)
    out = []
    for p in record.points:
        pred = record.decisions(p.pred)
        point = f1_scores(gold, pred, n_classes)[key == "micro_f1"]
        lo = hi = point
        if rc.bootstrap:
            lo, hi = interval(getattr(bootstrap(gold, pred, n_classes, rc.bootstrap, seed), key), rc.confidence)
        out.append(Point(p.model, p.fraction, p.train_docs, p.classes_in_train, p.fit_s, point, lo, hi))
    return out


def curve_csv(points: list[Point], model: str) -> str:
    """One model's curve for `dvc plots show` (reports/learning_curves/<ds>/<model>.csv)."""
    lines = ["train_docs,fraction,f1,f1_lo,f1_hi"]
    lines += [f"{p.train_docs},{p.fraction:g},{p.f1:.6g},{p.lo:.6g},{p.hi:.6g}" for p in points if p.model == model]
    return "\n".join(lines) + "\n"
