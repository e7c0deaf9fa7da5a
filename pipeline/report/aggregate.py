"""Collect what the runs left behind: per (dataset, model) metrics, predictions, curves, status.

Layout read (the trainers' report dirs + the flow's job status):
    reports/<ds>/<model>/{metrics.json, predictions.parquet, curves.csv}
    reports/<ds>/<model>/seeds/<seed>/{metrics.json, ...}     extra seeds
    reports/<ds>/.status/<model>/<first seed>.json            the flow's record (paths.job_status)
A model without results, or whose status says `failed`, becomes a failed `ModelResult` that
carries its error line; a corrupt or wrong-typed file is a TextbenchError naming it (pipeline/artifacts.py).
A multi-label run's label sets read as "a, b" strings (class order) and 0/1 rows (`ModelResult.targets`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.artifacts import RunMetrics, RunStatus
from pipeline.config import Config
from pipeline.errors import TextbenchError


@dataclass
class ModelResult:
    """One (dataset, model): its status and, when ok, the primary seed's results."""

    dataset: str
    model: str
    status: str  # ok | failed | missing | skipped | running (killed mid-run, no earlier results) | not_comparable
    error: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    predictions: pd.DataFrame | None = None  # sorted by id
    curves: pd.DataFrame | None = None
    seed_metrics: dict[int, dict[str, Any]] = field(default_factory=dict)  # every seed found, primary included
    stale: bool = False  # status.json fingerprint differs from metrics.json's

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def comparable(self) -> bool:
        """Ok and measuring the model (not, e.g., an encoder that reads most tokens as [UNK])."""
        return self.ok and not self.metrics.get("not_comparable")

    @property
    def converged(self) -> bool:
        return bool(self.metrics.get("converged"))

    @property
    def multi(self) -> bool:
        return self.metrics.get("label_mode") == "multi"

    @property
    def dir(self) -> Path:
        return paths.report_dir(self.dataset, self.model)

    def targets(self) -> tuple[np.ndarray, np.ndarray]:
        """Test gold and predictions in id order: class ids [n], or 0/1 matrices [n, C] (multi-label)."""
        df = self.predictions
        assert df is not None
        if self.multi:
            return np.stack(df["y_true"].to_numpy()), np.stack(df["y_pred"].to_numpy())
        return df["y_true"].to_numpy(), df["y_pred"].to_numpy()

    def probs(self) -> np.ndarray:
        """Test probabilities [n, C] in id order (as predict gives them: after temperature scaling)."""
        assert self.predictions is not None
        return np.stack(self.predictions["probs"].to_numpy()).astype(np.float32)


def collect(cfg: Config, dataset: str) -> list[ModelResult]:
    """Every model of `benchmark.models` for `dataset`, in params order."""
    return [_run(cfg, dataset, model) for model in cfg.benchmark.models]


def _run(cfg: Config, dataset: str, model: str) -> ModelResult:
    rdir = paths.report_dir(dataset, model)
    status = RunStatus.of(dataset, model, primary := cfg.benchmark.primary_seed)
    metrics = RunMetrics.of(rdir)
    if status and metrics and _older(paths.job_status(dataset, model, primary), rdir / paths.METRICS):
        status = None  # results written after the flow's record (e.g. a hand-run `textbench train`): the record is of an earlier run
    state = status.status if status else "ok" if metrics else "missing"
    error = status.error if status else ""
    if state == "not_comparable":  # the flow did not train it; the reason is in `error`
        return ModelResult(dataset, model, state, error=error)
    if state == "failed" or metrics is None:
        error = error or (
            f"no results in reports/{dataset}/{model}: run `textbench train -d {dataset} -m {model}` "
            "or `textbench benchmark`"
        )
        return ModelResult(
            dataset, model, state if state in ("failed", "skipped", "running") else "missing", error=error
        )
    found = metrics.as_dict()
    if isinstance(found.get("params"), int):  # older trainers: `params` was the parameter count
        found.setdefault("num_params", found["params"])
    seeds = {}
    for seed in cfg.benchmark.seeds_for(model):
        other = metrics if metrics.seed == seed else RunMetrics.of(paths.seed_dir(rdir, seed))
        if other is not None:
            seeds[seed] = found if other is metrics else other.as_dict()
    stale = bool(status and status.fingerprint) and status.fingerprint != metrics.fingerprint
    return ModelResult(
        dataset,
        model,
        "ok",
        metrics=found,
        predictions=read_predictions(rdir, metrics.labels, metrics.label_mode == "multi"),
        curves=_curves(rdir / paths.CURVES_CSV),
        seed_metrics=seeds,
        stale=stale,
    )


def _older(a: Path, b: Path) -> bool:
    return a.stat().st_mtime < b.stat().st_mtime


def read_predictions(rdir: Path, labels: list[str], multi: bool) -> pd.DataFrame:
    """Test predictions sorted by id, with integer `y_true`/`y_pred` indices into `labels` (multi-label:
    0/1 rows over `labels`, and `label`/`pred` joined into "a, b" strings)."""
    path = rdir / paths.PREDICTIONS
    if not path.is_file():
        raise TextbenchError(f"{path}: missing beside metrics.json; retrain that model (textbench train)")
    try:
        df = pd.read_parquet(path, columns=["id", "text", "label", "pred", "confidence", "probs"])
    except Exception as e:  # pyarrow raises several types for corrupt or foreign files
        raise TextbenchError(
            f"{path}: unreadable predictions ({e.__class__.__name__}: {e}); retrain that model (textbench train)"
        ) from None
    index = {name: i for i, name in enumerate(labels)}
    names = {x for col in ("label", "pred") for v in df[col] for x in (list(v) if multi else [v])}
    unknown = sorted(names - index.keys())
    if unknown:
        raise TextbenchError(f"{path}: classes {unknown[:5]} are not in metrics.json labels; retrain that model")
    df = df.sort_values("id", kind="stable").reset_index(drop=True)
    for col, target in (("label", "y_true"), ("pred", "y_pred")):
        if multi:
            rows = [np.isin(np.arange(len(labels)), [index[x] for x in v]).astype(np.int8) for v in df[col]]
            df[target] = pd.Series(rows, dtype=object)
            df[col] = [", ".join(v) for v in df[col]]
        else:
            df[target] = df[col].map(index).to_numpy(np.int64)
    return df


def _curves(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise TextbenchError(f"{path}: unreadable training curves ({e}); retrain that model") from None
