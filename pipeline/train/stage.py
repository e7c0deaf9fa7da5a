"""`train(cfg, dataset, model)`: tokenized data → a model dir + its report dir (pipeline/paths.py).

Outputs are built in temporary directories and swapped in only when everything succeeded, so a
failed or interrupted run leaves earlier results untouched. While training, the resumable
`last/` state lives in paths.partial_dir, apart from models/; `resume=True` continues from it
and ends with the same metrics as an uninterrupted run. A finished model dir keeps only what
inference needs.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from pipeline import paths
from pipeline.artifacts import ModelConfig, RunMetrics, TokenizedMeta
from pipeline.config import Config, TrainConfig
from pipeline.device import describe, pick_device, pick_precision
from pipeline.effective import run_fingerprint
from pipeline.errors import TextbenchError
from pipeline.evaluate import (
    THRESHOLD,
    PeakMemory,
    calibration,
    fit_temperature,
    logits_of,
    param_count,
    predictions_table,
    score,
    temper,
    tune_threshold,
)
from pipeline.io import atomic_dir, locked
from pipeline.models.registry import BuildContext, FeatureClassifier, build_model, entry
from pipeline.pretrained import resolve_encoder
from pipeline.tokenize.coverage import uncovered_reason
from pipeline.train import checkpoint
from pipeline.train.data import Split, read_splits
from pipeline.train.features import encoder_features
from pipeline.train.linear import fit_linear
from pipeline.train.loop import FitInputs, fit, make_optimizer, predict, resolve_budget, seed_everything


def train(
    cfg: Config,
    dataset: str,
    model: str,
    *,
    seed: int | None = None,
    resume: bool = False,
    model_dir: Path | None = None,
    report_dir: Path | None = None,
) -> dict[str, Any]:
    """Train `model` on `dataset` and write its model and report dirs; returns metrics.json's content.

    The job lock (paths.job_lock) is held throughout: a second trainer of the same model dir stops
    at once with an error instead of writing the same `.partial/` and outputs."""
    model_dir = Path(model_dir or paths.model_dir(dataset, model))
    report_dir = Path(report_dir or paths.report_dir(dataset, model))
    busy = f"{model_dir}: another trainer is writing it; wait for it or stop it"
    with locked(paths.job_lock(model_dir), busy=busy):
        fitted = fit_model(cfg, dataset, model, seed, paths.partial_dir(model_dir), resume)
        assert fitted is not None  # nothing is `known`
        _write_model_dir(model_dir, fitted.model_cfg, fitted.weights, fitted.tok_dir, fitted.meta)
        _write_report_dir(report_dir, fitted.metrics, fitted.predictions, fitted.curves)
        shutil.rmtree(paths.partial_dir(model_dir), ignore_errors=True)
        return fitted.metrics.as_dict()


@dataclass
class Fitted:
    """One fitted model, before anything is written: what the model and report dirs get, and the test
    split with its calibrated probabilities and decision threshold (learning curves score these)."""

    metrics: RunMetrics
    model_cfg: ModelConfig
    weights: dict[str, torch.Tensor]
    predictions: Any  # pyarrow Table: predictions.parquet
    curves: list[dict[str, float]]
    tok_dir: Path
    meta: TokenizedMeta
    test: Split
    probs: np.ndarray
    threshold: float
    train_docs: int


def fit_model(
    cfg: Config,
    dataset: str,
    model: str,
    seed: int | None,
    partial: Path,
    resume: bool = False,
    train_ids: frozenset[str] | None = None,
    known: Callable[[str], bool] | None = None,
) -> Fitted | None:
    """Fit `model` on `dataset` (only the train documents in `train_ids`, when given) and score it on
    test; `partial` holds the resumable state while it trains. Writes nothing else. None, without
    fitting, when `known(fingerprint)` says the caller already has this run's results."""
    e = entry(model)
    ds = cfg.dataset(dataset)
    tc = cfg.train_for(model)
    arch = cfg.arch_for(model)
    seed = cfg.seed if seed is None else seed

    tok_dir = paths.tokenized_dir(dataset, e.scheme)
    meta = TokenizedMeta.of(tok_dir)
    labels = list(meta.labels)
    encoder = meta.encoder if e.scheme == "subword" else None
    if encoder is not None and encoder != ds.encoder:
        raise TextbenchError(
            f"{tok_dir}/meta.json was tokenized with encoder '{encoder}' but "
            f"datasets.{dataset}.encoder is '{ds.encoder}'; rerun `textbench tokenize -d {dataset}`"
        )
    whole = meta.reads(model) != meta.max_len  # a bag of n-grams reads bag_ids, cut at bag_max_len
    splits = read_splits(tok_dir, len(labels), "bag_ids" if whole else "input_ids")
    texts = _test_texts(dataset, splits["test"])
    embeddings = np.load(tok_dir / meta.embeddings_file) if meta.embeddings_file else None

    seed_everything(seed)
    linear = e.family == "linear"  # fitted by scikit-learn on the CPU (pipeline/train/linear.py)
    device = pick_device("cpu" if linear else tc.device, tc.threads)
    precision = "fp32" if linear else pick_precision(tc.precision, device)
    ctx = BuildContext(
        num_labels=len(labels),
        vocab_size=meta.vocab_size,
        pad_id=meta.pad_id,
        max_len=meta.reads(model),
        embeddings=embeddings,
        encoder=encoder,
    )
    net, arch_kw = build_model(model, ctx, arch, scheme=meta.scheme)
    net.to(device)
    # frozen encoder: heads train on its cached token states (computed once per dataset and encoder)
    frozen = e.scheme == "subword" and bool(arch_kw.get("freeze_encoder"))
    features_key = None
    if frozen:
        splits, features_key = encoder_features(
            dataset, splits, meta.fingerprint, net.embedder.encoder, device, precision
        )
    trained = FeatureClassifier(net.head) if frozen else net
    share: list[list[str]] = []  # a share of train is part of the fingerprint; the whole split is not
    if train_ids is not None:  # after the features: the cache holds every document
        train = splits["train"]
        splits["train"] = train.subset(np.array([i for i, d in enumerate(train.ids) if d in train_ids], np.int64))
        share = [sorted(splits["train"].ids)] if len(splits["train"]) < len(train) else []
    splits["train"] = _subsample(splits["train"], tc.max_train_samples, seed)
    tc = resolve_budget(tc, splits["train"])  # batch size from the corpus' lengths (train.batch_tokens)
    train_kw = tc.model_dump()
    multi = meta.label_mode == "multi"
    fp = run_fingerprint(cfg, dataset, model, seed, meta, share)
    if known is not None and known(fp):
        return None
    state = checkpoint.TrainState(fingerprint=fp, num_labels=len(labels))
    memory = PeakMemory(device)
    if linear:  # seconds: nothing to resume
        converged = fit_linear(net, splits["train"], splits["dev"], labels, tc, seed, state)
    else:
        state = _fit_neural(trained, splits, labels, tc, seed, ctx.pad_id, device, precision, partial, resume, state)
        converged = state.stop_reason == "plateau"
    test, dev = splits["test"], splits["dev"]
    dev_probs = predict(trained, dev, tc.batch_size, ctx.pad_id, device, precision)[0]
    # a linear baseline's module divides by its own dev-fitted temperature (pipeline/train/linear.py)
    temperature = 1.0 if linear else fit_temperature(logits_of(dev_probs, multi), dev.labels)
    t0 = time.perf_counter()
    raw, _ = predict(trained, test, tc.batch_size, ctx.pad_id, device, precision)
    infer_s = time.perf_counter() - t0
    probs = temper(raw, temperature, multi)  # what the predictor gives: softmax(logits / temperature)
    # single-label: unused; multi-label: the fixed setting, or tuned on the calibrated dev probabilities
    threshold = _threshold(ds.threshold, dev.labels, temper(dev_probs, temperature, multi)) if multi else THRESHOLD
    metrics = RunMetrics(
        dataset=dataset,
        model=model,
        seed=seed,
        **score(test.labels, probs, labels, threshold),
        params={"arch": arch_kw, "train": train_kw, "precision": precision, "device": str(device)},
        env=describe(device, precision),
        **param_count(net),
        train_time_s=state.wall_s,
        train_samples_per_s=state.samples / max(state.compute_s, 1e-9),
        infer_samples_per_s=len(test) / max(infer_s, 1e-9),
        peak_memory_mb=memory.mb,
        best_step=state.best_step,
        steps=state.step,
        fingerprint=fp,
        stop_reason=state.stop_reason,
        converged=converged,
        evaluations=len(state.curves),
        encoder_mode=None if e.scheme != "subword" else "frozen features" if frozen else "fine-tuned",
        features_key=features_key,
        not_comparable=uncovered_reason(meta, dataset),
        calibration={  # test ECE / Brier / NLL of the model's own and the temperature-scaled probabilities
            "temperature": temperature,
            "before": calibration(test.labels, raw),
            "after": calibration(test.labels, probs),
        },
    )
    model_cfg = ModelConfig(
        model=model,
        dataset=dataset,
        scheme=e.scheme,
        arch=arch_kw,
        train=train_kw,
        labels=labels,
        num_labels=len(labels),
        label_mode=meta.label_mode,
        **({"threshold": threshold} if multi else {}),
        temperature=temperature,
        seed=seed,
        fingerprint=fp,
        vocab_size=ctx.vocab_size,
        pad_id=ctx.pad_id,
        max_len=ctx.max_len,
        encoder=encoder,
        encoder_config=net.embedder.hf_config() if e.scheme == "subword" else None,
    )
    weights = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}  # best head (+ encoder)
    table = predictions_table(test.ids, texts, test.labels, probs, labels, threshold)
    return Fitted(
        metrics, model_cfg, weights, table, state.curves, tok_dir, meta, test, probs, threshold, len(splits["train"])
    )


def _fit_neural(
    trained: torch.nn.Module,
    splits: dict[str, Split],
    labels: list[str],
    tc: TrainConfig,
    seed: int,
    pad_id: int,
    device: torch.device,
    precision: str,
    partial: Path,
    resume: bool,
    state: checkpoint.TrainState,
) -> checkpoint.TrainState:
    """The training loop (from `partial`/last when resuming); leaves the best-on-dev weights in `trained`."""
    opt = make_optimizer(trained, tc)
    best: dict[str, torch.Tensor] = {}
    if resume:
        if (partial / "last" / "state.json").is_file():
            state, best = checkpoint.load_last(partial / "last", trained, opt, state)
        else:
            tqdm.write(f"--resume: no checkpoint under {partial}; starting from scratch")
    run = FitInputs(
        trained, splits["train"], splits["dev"], labels, tc, seed, pad_id, device, precision, partial / "last"
    )
    state, best = fit(run, state, best, opt)
    trained.load_state_dict(best)
    return state


def _threshold(setting: float | str, dev_labels: np.ndarray, dev_probs: np.ndarray) -> float:
    """Multi-label decision threshold: the dataset's `threshold`, or (`dev`) the one best on dev micro-F1."""
    return tune_threshold(dev_labels, dev_probs) if setting == "dev" else float(setting)


def _subsample(split: Split, n: int, seed: int) -> Split:
    """First `n` rows of a seeded permutation (all rows when n is 0 or ≥ the split)."""
    if not n or n >= len(split):
        return split
    return split.subset(np.sort(np.random.default_rng([seed, 1]).permutation(len(split))[:n]))


def _test_texts(dataset: str, test: Split) -> list[str]:
    """Raw test texts (for predictions.parquet) from the prepared split, matched by id."""
    path = paths.split_file(paths.prepared_dir(dataset), "test")
    if not path.is_file():
        raise TextbenchError(f"{path}: not found; run `textbench prepare -d {dataset}` (predictions need the texts)")
    table = pq.read_table(path, columns=["id", "text"])
    by_id = dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist()))
    missing = [i for i in test.ids if i not in by_id]
    if missing:
        raise TextbenchError(
            f"{path}: {len(missing)} tokenized test ids (e.g. {missing[0]}) are not in the "
            f"prepared split; rerun `textbench tokenize -d {dataset}`"
        )
    return [by_id[i] for i in test.ids]


def _write_model_dir(
    model_dir: Path, model_cfg: ModelConfig, best: dict[str, torch.Tensor], tok_dir: Path, meta: TokenizedMeta
) -> None:
    """config.json + best weights + tokenizer/. The resumable state (optimizer, RNG: ~4x the weights
    of a MiniLM model) is not kept once training has finished: `--resume` continues interrupted runs."""
    from safetensors.torch import save_file

    with atomic_dir(model_dir, keep=paths.KEPT_BY_RETRAIN) as tmp:
        model_cfg.write(tmp / paths.CONFIG)
        save_file(best, str(tmp / paths.WEIGHTS))
        tok = tmp / paths.TOKENIZER
        tok.mkdir()
        for f in tok_dir.iterdir():  # meta.json, vocab.json and any tokenizer files; not the data
            if f.is_file() and f.suffix not in (".parquet", ".npy") and not f.name.startswith("."):
                shutil.copy2(f, tok / f.name)
        if model_cfg.scheme == "subword" and not (tok / "tokenizer.json").is_file():
            from transformers import AutoTokenizer

            AutoTokenizer.from_pretrained(resolve_encoder(str(meta.encoder))).save_pretrained(str(tok))


def _write_report_dir(report_dir: Path, metrics: RunMetrics, predictions: Any, curves: list[dict[str, float]]) -> None:
    with atomic_dir(report_dir, keep=(paths.SEEDS,)) as tmp:
        metrics.write(tmp / paths.METRICS)
        pq.write_table(predictions, tmp / paths.PREDICTIONS)
        cols = ["step", "train_loss", "dev_loss", "dev_accuracy", "dev_macro_f1"]
        cols += ["dev_micro_f1"] if curves and "dev_micro_f1" in curves[0] else []
        lines = [",".join(cols)] + [",".join(f"{r[c]:.6g}" if c != "step" else str(r[c]) for c in cols) for r in curves]
        (tmp / paths.CURVES_CSV).write_text("\n".join(lines) + "\n", encoding="utf-8")
