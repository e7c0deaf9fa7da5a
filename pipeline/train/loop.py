"""The training loop: AdamW (lazy Adam for sparse embedding tables) + warmup schedule, clipping,
accumulation, autocast, dev evaluation, best-on-dev selection, early stopping, NaN guard and the
resumable `last/` checkpoint.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import get_scheduler

from pipeline.config import TrainConfig
from pipeline.device import autocast
from pipeline.errors import TextbenchError
from pipeline.evaluate import score
from pipeline.train import checkpoint
from pipeline.train.data import Split, epoch_batches, eval_batches


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch; deterministic kernels where that costs little."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def make_optimizer(model: torch.nn.Module, tc: TrainConfig) -> Optimizer:
    """AdamW; no weight decay on biases and norm weights (1-D params); per-layer lr scales. The fused
    kernel (CPU and CUDA) steps a fastText-sized 7.7M-parameter model 4.4x faster than the default.
    Embedding tables with sparse gradients (fastText's n-gram buckets) go to lazy Adam instead
    (`SparseAdam`: only the rows a batch touched move, no weight decay, as fastText's own SGD)."""
    sparse = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding) and m.sparse}
    groups: dict[tuple[bool, bool, float], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((id(p) in sparse, p.ndim >= 2, model.lr_scale(name)), []).append(p)
    order = sorted(groups.items(), key=lambda kv: (not kv[0][1], -kv[0][2]))
    dense = torch.optim.AdamW(
        [
            {"params": ps, "weight_decay": tc.weight_decay if decay else 0.0, "lr_scale": scale}
            for (is_sparse, decay, scale), ps in order
            if not is_sparse
        ],
        lr=tc.lr,
        fused=next(model.parameters()).device.type in ("cpu", "cuda"),
    )
    lazy = [{"params": ps, "lr_scale": scale} for (is_sparse, _, scale), ps in order if is_sparse]
    return SparseAwareAdamW(dense, torch.optim.SparseAdam(lazy, lr=tc.lr)) if lazy else dense


class SparseAwareAdamW:
    """AdamW over the dense parameters + SparseAdam over the sparse-gradient tables, as one optimizer
    for the loop, GradScaler and the checkpoint: `param_groups`, `step`, `zero_grad` and a state dict
    in one index space (the dense optimizer's parameters first, then the sparse one's)."""

    def __init__(self, dense: torch.optim.AdamW, sparse: torch.optim.SparseAdam) -> None:
        self.parts: tuple[torch.optim.Optimizer, ...] = (dense, sparse)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for part in self.parts for g in part.param_groups]

    def step(self) -> None:
        for part in self.parts:
            part.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        state: dict[int, Any] = {}
        groups: list[dict[str, Any]] = []
        for part, offset in zip(self.parts, self._offsets()):
            sd = part.state_dict()
            state |= {i + offset: st for i, st in sd["state"].items()}
            groups += [g | {"params": [i + offset for i in g["params"]]} for g in sd["param_groups"]]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        first = 0
        for part, offset in zip(self.parts, self._offsets()):
            groups = sd["param_groups"][first : first + len(part.param_groups)]
            first += len(part.param_groups)
            ids = {i for g in groups for i in g["params"]}
            part.load_state_dict(
                {
                    "state": {i - offset: st for i, st in sd["state"].items() if i in ids},
                    "param_groups": [g | {"params": [i - offset for i in g["params"]]} for g in groups],
                }
            )

    def _offsets(self) -> list[int]:
        sizes = [sum(len(g["params"]) for g in part.param_groups) for part in self.parts]
        return [sum(sizes[:k]) for k in range(len(sizes))]


Optimizer = torch.optim.AdamW | SparseAwareAdamW


def clip_grad_norm(params: list[torch.nn.Parameter], max_norm: float) -> None:
    """`torch.nn.utils.clip_grad_norm_`, also over sparse gradients (which it rejects): their values
    are coalesced first, so a row looked up twice in a batch counts once in the norm."""
    if not any(p.grad is not None and p.grad.is_sparse for p in params):
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        return
    for p in params:
        if p.grad is not None and p.grad.is_sparse:
            p.grad = p.grad.coalesce()
    values = [p.grad._values() if p.grad.is_sparse else p.grad for p in params if p.grad is not None]
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v.float()) for v in values]))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for v in values:
        v.mul_(coef.to(v.dtype))


SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}  # train.scheduler → HF


def lr_schedule(total: int, tc: TrainConfig) -> Callable[[int], float]:
    """Multiplier of the base lr for optimizer step `step` (0-based): `transformers.get_scheduler`'s
    linear warmup over `warmup_ratio` of `total`, then `train.scheduler`'s decay. A pure function of the
    step (the scheduler's lr_lambda, built on a throwaway optimizer), so a resumed run continues it exactly."""
    dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    return get_scheduler(
        SCHEDULES[tc.scheduler], dummy, num_warmup_steps=math.ceil(tc.warmup_ratio * total), num_training_steps=total
    ).lr_lambdas[0]


def loss_fn(
    logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy over exclusive classes (y: class ids); for multi-hot targets y [B, C], binary
    cross-entropy per label (mean over labels) with `weight` as the positives' pos_weight."""
    if y.ndim == 2:
        loss = F.binary_cross_entropy_with_logits(logits, y, pos_weight=weight, reduction="none").mean(1)
        return loss.sum() if reduction == "sum" else loss.mean()
    return F.cross_entropy(logits, y, weight=weight, reduction=reduction)


def class_weights(labels: np.ndarray, num_labels: int) -> np.ndarray:
    """`train.class_weights`: inverse class frequency n / (C * n_c); multi-label: each label's
    negatives / positives (BCE pos_weight). Classes without train documents count as 1."""
    if labels.ndim == 2:
        pos = labels.sum(0).astype(np.float64)
        return (len(labels) - pos) / np.maximum(pos, 1)
    counts = np.bincount(labels, minlength=num_labels).astype(np.float64)
    return len(labels) / (num_labels * np.maximum(counts, 1))


@torch.no_grad()
def predict(
    model: torch.nn.Module, split: Split, batch_size: int, pad_id: int, device: torch.device, precision: str
) -> tuple[np.ndarray, float]:
    """Class probabilities [N, C] (rows in split order: softmax, or per-label sigmoid for multi-label
    splits) and the mean loss (`loss_fn`)."""
    model.eval()
    probs: np.ndarray | None = None
    loss = 0.0
    for rows in eval_batches(split, batch_size):
        inputs, mask = split.collate(rows, pad_id)
        with autocast(device, precision):
            logits = model(inputs.to(device), mask.to(device)).float()
        y = torch.from_numpy(split.labels[rows]).to(device)
        loss += loss_fn(logits, y, reduction="sum").item()
        p = (torch.sigmoid(logits) if split.multi else torch.softmax(logits, -1)).cpu().numpy()
        if probs is None:
            probs = np.zeros((len(split), p.shape[1]), dtype=np.float32)
        probs[rows] = p
    assert probs is not None
    return probs, loss / len(split)


MIN_BATCH = 8  # `train.batch_tokens` never shrinks a batch below this many documents
# `train.eval_every: auto`: a dev evaluation at least every EVAL_BATCHES full batches' worth of real tokens
# (EVAL_BATCHES x batch_tokens = 307,200 at 6144). Reuters (≤ 260k train tokens) and THUCNews (≤ 149k)
# epochs hold fewer, so they evaluate once an epoch; the IMDB sample (410k vocab / 471k subword) twice.
EVAL_BATCHES = 50


def steps_per_epoch(docs: int, batch_size: int, grad_accum: int) -> int:
    """Optimizer steps in an epoch of `docs` documents (the last, short batch is a step too)."""
    return math.ceil(math.ceil(docs / batch_size) / grad_accum)


def resolve_budget(tc: TrainConfig, train: Split) -> TrainConfig:
    """The settings a run trains with on this corpus: `train.batch_tokens` caps the batch at that many real
    tokens on average (batch_tokens // the mean train length, at least MIN_BATCH, never above `batch_size`).
    Long documents then take more, smaller steps per epoch instead of a few huge ones; short-text corpora,
    whose batches fit the cap, keep `batch_size` as given. `eval_every: auto` becomes steps: 0 (each epoch)
    when an epoch holds at most EVAL_BATCHES x batch_tokens real train tokens, else that epoch's steps split
    evenly into ceil(tokens / that) evaluations, so patience can see a plateau within a few epochs of a
    large or long-document corpus. A pure function of the config and the data."""
    update: dict[str, int] = {}
    if tc.batch_tokens and len(train):
        cap = max(MIN_BATCH, int(tc.batch_tokens // max(1.0, float(train.lengths.mean()))))
        if cap < tc.batch_size:
            update["batch_size"] = cap
    if tc.eval_every == "auto":
        update["eval_every"] = 0
        if tc.batch_tokens and len(train):
            evals = math.ceil(int(train.lengths.sum()) / (EVAL_BATCHES * tc.batch_tokens))
            batch = update.get("batch_size", tc.batch_size)
            steps = steps_per_epoch(len(train), batch, tc.grad_accum)
            if evals > 1 and steps > 1:
                update["eval_every"] = math.ceil(steps / evals)
    return tc.model_copy(update=update) if update else tc


@dataclass
class FitInputs:
    """One training run's fixed inputs."""

    model: torch.nn.Module
    train: Split
    dev: Split
    labels: list[str]
    tc: TrainConfig
    seed: int
    pad_id: int
    device: torch.device
    precision: str
    last_dir: Path  # where `last/` is written while training

    def steps_per_epoch(self) -> int:
        return steps_per_epoch(len(self.train), self.tc.batch_size, self.tc.grad_accum)

    def total_steps(self) -> int:
        total = self.steps_per_epoch() * self.tc.epochs
        return min(total, self.tc.max_steps) if self.tc.max_steps else total


def _positions(run: FitInputs, state: checkpoint.TrainState) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """(epoch, batch index, batches in epoch, rows) from the saved data position on."""
    for epoch in range(state.epoch, run.tc.epochs):
        batches = epoch_batches(run.train, run.tc.batch_size, run.seed, epoch)
        start = state.batch if epoch == state.epoch else 0
        for b in range(start, len(batches)):
            yield epoch, b, len(batches), batches[b]


def evals_since_best(state: checkpoint.TrainState) -> int:
    """Dev evaluations after the one that gave the best weights (the plateau length)."""
    return sum(1 for row in state.curves if row["step"] > state.best_step)


def stop_reason(run: FitInputs, state: checkpoint.TrainState, total: int) -> str:
    """Why training stops now ('' = it goes on); checked after each dev evaluation.

    A plateau is convergence: `patience` evaluations without a dev gain that also span at least one
    epoch of steps since the best. Several evaluations an epoch (a large or long-document corpus) would
    otherwise call a noise peak of the dev score a plateau a fraction of an epoch after it, with the train
    loss still falling (IMDB 25k half, 18 evaluations an epoch: textrnn "converged" at 0.69 after a third
    of one). Evaluated at most `patience` times an epoch (Reuters and THUCNews once, the IMDB sample twice)
    the `patience` evaluations span an epoch anyway, so those runs stop as they did without this condition.
    Every other reason is a cap that stopped a run whose dev score may still have been rising."""
    tc = run.tc
    if tc.patience and evals_since_best(state) >= tc.patience and state.step - state.best_step >= run.steps_per_epoch():
        return "plateau"
    if tc.time_budget_s and state.wall_s >= tc.time_budget_s:
        return "time_budget"
    if state.step >= total:
        return "max_steps" if tc.max_steps and total == tc.max_steps else "epochs"
    return ""


def fit(
    run: FitInputs, state: checkpoint.TrainState, best: dict[str, torch.Tensor], opt: Optimizer
) -> tuple[checkpoint.TrainState, dict[str, torch.Tensor]]:
    """Train from `state` until a dev plateau or a cap (epochs, max_steps, time budget); `state.stop_reason`
    says which. Returns the final state and the best-on-dev weights."""
    tc, model, device = run.tc, run.model, run.device
    total = run.total_steps()
    lr_factor = lr_schedule(total, tc)
    weight = None
    if tc.class_weights:
        weight = torch.tensor(class_weights(run.train.labels, len(run.labels)), dtype=torch.float32, device=device)
    scaler = torch.amp.GradScaler(device.type, enabled=run.precision == "fp16")
    if state.scaler:
        scaler.load_state_dict(state.scaler)
    bar = tqdm(total=total, initial=state.step, desc="train", unit="step", dynamic_ncols=True, leave=False)
    micro, started = 0, time.perf_counter()
    saver = _Saver(run.last_dir)
    model.train()
    for epoch, b, n_batches, rows in _positions(run, state):
        if state.stop_reason:
            break
        t0 = time.perf_counter()
        inputs, mask = run.train.collate(rows, run.pad_id)
        y = torch.from_numpy(run.train.labels[rows]).to(device)
        with autocast(device, run.precision):
            logits = model(inputs.to(device), mask.to(device))
        loss = loss_fn(logits.float(), y, weight)
        if not torch.isfinite(loss):
            raise TextbenchError(
                f"training diverged: loss is {loss.item()} at step {state.step} (epoch {epoch}); "
                f"lower models.<name>.train.lr, keep grad_clip > 0, or set precision: fp32"
            )
        scaler.scale(loss / tc.grad_accum).backward()
        state.loss_sum += loss.item()
        state.loss_count += 1
        state.samples += len(rows)
        micro += 1
        epoch_end = b + 1 == n_batches
        if micro == tc.grad_accum or epoch_end:
            for g in opt.param_groups:
                g["lr"] = tc.lr * g["lr_scale"] * lr_factor(state.step)
            if tc.grad_clip:
                scaler.unscale_(opt)
                clip_grad_norm(list(model.parameters()), tc.grad_clip)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            micro = 0
            state.step += 1
            state.epoch, state.batch = (epoch + 1, 0) if epoch_end else (epoch, b + 1)
            bar.update(1)
        state.compute_s += time.perf_counter() - t0
        if micro:
            continue
        over_budget = bool(tc.time_budget_s) and state.wall_s + time.perf_counter() - started >= tc.time_budget_s
        due = epoch_end if not tc.eval_every else state.step % int(tc.eval_every) == 0
        if due or over_budget or state.step >= total:
            best = _evaluate(run, state, best, bar)
            state.wall_s += time.perf_counter() - started  # the steps since the last evaluation, and this one
            state.stop_reason = stop_reason(run, state, total)
            state.scaler = scaler.state_dict()
            saver.save(model, best, opt, state, force=bool(state.stop_reason))
            started = time.perf_counter()
            model.train()
    bar.close()
    if not state.stop_reason:  # the data ran out between evaluations (or a resumed run was already done)
        if not state.curves or state.curves[-1]["step"] != state.step:
            best = _evaluate(run, state, best, bar)
        state.wall_s += time.perf_counter() - started
        state.stop_reason = stop_reason(run, state, total) or "epochs"
        saver.save(model, best, opt, state, force=True)
    return state, best


# `last/` is rewritten at every dev evaluation while a write takes under CHEAP_WRITE_S (small models:
# milliseconds), else once the training since the previous write took 1 / CHECKPOINT_SHARE times that
# write, so the resume state costs at most ~that share of the run: fastText's 200k-bucket tables (weights,
# best weights, two Adam moments: ~820 MB, 1.5 s a write on a 2-core box) every ~15 s instead of 37 times
# on the IMDB 25k half (+54 s). Always written when training stops; a resumed run repeats at most the steps
# since the last write, and ends exactly as an uninterrupted one.
CHEAP_WRITE_S = 0.1
CHECKPOINT_SHARE = 0.1


class _Saver:
    def __init__(self, last_dir: Path) -> None:
        self.last_dir, self.written_at, self.cost = last_dir, time.perf_counter(), 0.0

    def save(
        self,
        model: torch.nn.Module,
        best: dict[str, torch.Tensor],
        opt: Optimizer,
        state: checkpoint.TrainState,
        force: bool,
    ) -> None:
        due = self.cost < CHEAP_WRITE_S or time.perf_counter() - self.written_at >= self.cost / CHECKPOINT_SHARE
        if force or due:
            t0 = time.perf_counter()
            checkpoint.save_last(self.last_dir, model, best, opt, state)
            self.written_at = time.perf_counter()
            self.cost = self.written_at - t0


def _evaluate(
    run: FitInputs, state: checkpoint.TrainState, best: dict[str, torch.Tensor], bar: tqdm
) -> dict[str, torch.Tensor]:
    """Dev evaluation: append a curves row; keep the weights if the selection metric improved.

    Multi-label dev rows add `dev_micro_f1`, and `select_metric: accuracy` selects by it: micro-F1 is
    accuracy's multi-label counterpart (equal to it for single-label), where subset accuracy would
    barely move between evaluations."""
    probs, dev_loss = predict(run.model, run.dev, run.tc.batch_size, run.pad_id, run.device, run.precision)
    m = score(run.dev.labels, probs, run.labels)
    row = {
        "step": state.step,
        "train_loss": state.loss_sum / max(1, state.loss_count),
        "dev_loss": dev_loss,
        "dev_accuracy": m["accuracy"],
        "dev_macro_f1": m["macro_f1"],
    }
    if run.dev.multi:
        row["dev_micro_f1"] = m["micro_f1"]
    state.curves.append(row)
    state.loss_sum, state.loss_count = 0.0, 0
    metric = "micro_f1" if run.dev.multi and run.tc.select_metric == "accuracy" else run.tc.select_metric
    value = -dev_loss if metric == "loss" else row[f"dev_{metric}"]
    if value > state.best_score:
        state.best_score, state.best_step = value, state.step
        best = {k: v.detach().cpu().clone().contiguous() for k, v in run.model.state_dict().items()}
    bar.set_postfix(dev_acc=f"{m['accuracy']:.3f}", dev_f1=f"{m['macro_f1']:.3f}", refresh=False)
    return best
