"""Learning curves (`textbench curves`, the DVC curves stage): test scores against train size.

Each model of `curves.models` is fitted by the trainer's own `fit_model` (pipeline/train/stage.py) on
stratified, seeded shares (`curves.fractions`) of the train split; dev and test stay whole. A frozen
BERT-family head reads the cached encoder states (data/features/<ds>/), computed once for every share.
The shares are nested (the 1 % documents are inside the 3 % ones) and a function of (document ids,
labels, seed) only, so every model and both schemes see the same documents. Each class keeps at least
one document; multi-label documents are stratified by their rarest train label, so a label may still
be missing from a small share (points.json records how many classes each fit saw).

reports/learning/<ds>/points.json holds every fit's size, time and test predictions; the report
draws the curves with bootstrap bands from them (pipeline/report/learning.py).
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.artifacts import LearningPoints, RunMetrics, TokenizedMeta, encode_decisions
from pipeline.config import Config
from pipeline.evaluate import decide
from pipeline.families import SCHEME_OF_MODEL
from pipeline.io import atomic_dir
from pipeline.report.aggregate import read_predictions
from pipeline.tokenize.coverage import uncovered_reason
from pipeline.train.data import read_split


def stratified_rows(ids: list[str], labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted rows of a stratified share of the documents: per stratum (the class; multi-label: the
    rarest label of the document, its own stratum when it has none) the first ceil(fraction × size),
    at least 1, of a seeded permutation of the stratum's documents in id order. A larger share holds
    every document of a smaller one."""
    strata = _strata(labels)
    chosen = []
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        members = members[np.argsort([ids[i] for i in members], kind="stable")]
        order = members[np.random.default_rng([seed, int(s) + 1]).permutation(len(members))]
        chosen.append(order[: max(1, math.ceil(fraction * len(members) - 1e-9))])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def _strata(labels: np.ndarray) -> np.ndarray:
    if labels.ndim == 1:
        return labels.astype(np.int64)
    counts = labels.sum(0)
    rarity = np.where(labels > 0, counts[None, :], np.inf)  # a document's labels by train frequency
    return np.where(labels.any(1), rarity.argmin(1), -1)


def _classes(labels: np.ndarray) -> int:
    return int(len(np.unique(labels)) if labels.ndim == 1 else (labels.sum(0) > 0).sum())


def build_curves(cfg: Config, dataset: str) -> Path:
    """Fit every `curves.models` model on every share of `dataset`'s train split; write points.json.

    The whole train split is the benchmark's own run: when reports/<ds>/<model>/ holds a run with the
    fingerprint this fit would have (same data, settings and seed), its test predictions are the
    point and nothing is refitted. The run fingerprint leaves out the code: under `dvc repro` the stage
    runs after a benchmark of the current code (it depends on pipeline/models and pipeline/train), but
    a hand-run `textbench curves` after a code change, before the benchmark reruns, reuses the older run."""
    from pipeline.train.stage import fit_model  # torch: only when curves are built

    cfg.dataset(dataset)  # an unknown name is one error line, before anything is read
    vocab_meta = TokenizedMeta.of(paths.tokenized_dir(dataset, "vocab"))
    labels = list(vocab_meta.labels)
    train = read_split(paths.tokenized_dir(dataset, "vocab"), "train", len(labels))
    shares = {f: stratified_rows(train.ids, train.labels, f, cfg.seed) for f in cfg.curves.fractions}
    test = read_split(paths.tokenized_dir(dataset, "vocab"), "test", len(labels))
    order = np.argsort(np.array(test.ids, dtype=object), kind="stable")  # points.json: test documents in id order
    points, skipped = [], {}
    started = time.perf_counter()
    for model in cfg.curves.models:
        meta = TokenizedMeta.of(paths.tokenized_dir(dataset, SCHEME_OF_MODEL[model]))
        if reason := (uncovered_reason(meta, dataset) if cfg.benchmark.uncovered == "skip" else ""):
            skipped[model] = reason
            print(f"curves {dataset}: {model} skipped: {reason}")
            continue
        run = paths.report_dir(dataset, model)
        benchmarked = _benchmarked(run)  # a share's fingerprint names its documents: only the whole split matches
        known = benchmarked.__eq__ if benchmarked else None
        partial = paths.learning_partial(dataset, model)
        for fraction, rows in shares.items():
            t0 = time.perf_counter()
            ids = frozenset(train.ids[i] for i in rows)
            fitted = fit_model(cfg, dataset, model, cfg.benchmark.primary_seed, partial, train_ids=ids, known=known)
            shutil.rmtree(partial, ignore_errors=True)
            if fitted is None:  # the benchmark's run of this model on the whole train split
                pred = read_predictions(run, labels, test.multi)["y_pred"].to_numpy()
                pred, source = (np.stack(pred) if test.multi else pred.astype(np.int64)), "benchmark"
                docs = min(len(rows), cfg.train_for(model).max_train_samples or len(rows))
            else:
                by_id = np.argsort(np.array(fitted.test.ids, dtype=object), kind="stable")
                pred, source = decide(fitted.probs, test.multi, fitted.threshold)[by_id], "fitted"
                docs = fitted.train_docs
            fit_s = time.perf_counter() - t0
            points.append(
                {
                    "model": model,
                    "fraction": fraction,
                    "train_docs": docs,
                    "classes_in_train": _classes(train.labels[rows]),
                    "fit_s": round(fit_s, 2),
                    "source": source,
                    **(
                        {k: getattr(fitted.metrics, k) for k in ("steps", "stop_reason", "train_time_s")}
                        if fitted
                        else {}
                    ),
                    "pred": encode_decisions(pred, len(labels)),
                }
            )
            m = fitted.metrics.as_dict() if fitted else {}
            how = (
                f"{m['steps']} steps, {m['stop_reason']}, training {m['train_time_s']:.1f} s"
                if m
                else "benchmark's run"
            )
            print(f"curves {dataset}: {model} {fraction:g} ({docs} docs, {how}) {fit_s:.1f} s in all")
    total = time.perf_counter() - started
    print(f"curves {dataset}: {len(points)} points in {total:.1f} s")
    record = {
        "dataset": dataset,
        "seed": cfg.seed,
        "labels": labels,
        "label_mode": vocab_meta.label_mode,
        "train_docs": len(train),
        "n": len(test),
        "gold": encode_decisions(test.labels[order], len(labels)),
        "points": points,
        "skipped": skipped,
        "total_s": round(total, 2),
    }
    target = paths.learning_points(dataset)
    with atomic_dir(target.parent) as tmp:
        LearningPoints(**record).write(tmp / target.name)  # through what the report reads it with
    return target


def _benchmarked(run: Path) -> str | None:
    """The fingerprint of the benchmark's run in report dir `run` (None without one)."""
    metrics = RunMetrics.of(run) if (run / paths.PREDICTIONS).is_file() else None
    return metrics.fingerprint if metrics else None
