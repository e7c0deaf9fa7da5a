"""The resumable `last/` state: weights, best weights, optimizer, RNG, step and data position.

Tensors go to safetensors, everything else to state.json — never pickle, so a checkpoint can be
inspected and loaded without executing code. Written with `atomic_dir`: a crash mid-save keeps
the previous state.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import load_file, save_file

from pipeline import paths
from pipeline.errors import TextbenchError
from pipeline.io import atomic_dir, write_json
from pipeline.models.load import load_weights


@dataclass
class TrainState:
    """Everything besides tensors that a resumed run needs to continue exactly."""

    fingerprint: str
    num_labels: int
    step: int = 0  # optimizer steps done
    epoch: int = 0  # epoch of the next batch
    batch: int = 0  # index of the next batch in that epoch
    best_score: float = float("-inf")
    best_step: int = 0
    loss_sum: float = 0.0  # train loss since the last dev evaluation
    loss_count: int = 0
    samples: int = 0  # training samples processed
    compute_s: float = 0.0  # seconds in forward/backward/step
    wall_s: float = 0.0  # seconds in the training loop, dev evaluations included
    curves: list[dict[str, float]] = field(default_factory=list)
    scaler: dict[str, Any] = field(default_factory=dict)
    stop_reason: str = ""  # plateau | max_steps | time_budget | epochs, once training has ended


class Stateful(Protocol):
    """What the checkpoint needs of an optimizer (a torch one, or loop.py's SparseAwareAdamW)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


def _flat_optimizer(opt: Stateful) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The optimizer's per-parameter state as "<index>.<name>" tensors, and the rest for state.json: its
    param_groups and any plain-number state (SparseAdam counts its steps in an int, AdamW in a tensor)."""
    sd = opt.state_dict()
    flat = {f"{idx}.{k}": v for idx, st in sd["state"].items() for k, v in st.items()}
    tensors = {k: v.detach().cpu().contiguous() for k, v in flat.items() if isinstance(v, torch.Tensor)}
    scalars = {k: v for k, v in flat.items() if not isinstance(v, torch.Tensor)}
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def save_last(
    path: Path, model: torch.nn.Module, best: dict[str, torch.Tensor], opt: Stateful, state: TrainState
) -> None:
    """Write `path` (a `last/` dir) atomically."""
    with atomic_dir(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / paths.WEIGHTS))
        save_file(best, str(tmp / "best.safetensors"))
        opt_tensors, opt_rest = _flat_optimizer(opt)
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        rng = {"torch_cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng |= {f"torch_cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
        save_file(rng, str(tmp / "rng.safetensors"))
        s = asdict(state) | {"best_score": state.best_score if state.best_score > float("-inf") else None}
        write_json(tmp / "state.json", {"state": s} | opt_rest)


def load_last(
    path: Path, model: torch.nn.Module, opt: Stateful, expect: TrainState
) -> tuple[TrainState, dict[str, torch.Tensor]]:
    """Restore `path` into model/optimizer/RNG; checks it belongs to this run. Returns state and best weights."""
    try:
        raw = json.loads((path / "state.json").read_text(encoding="utf-8"))
        state = TrainState(**raw["state"])
        best = load_file(str(path / "best.safetensors"))
        opt_tensors = load_file(str(path / "optimizer.safetensors"))
        opt_scalars = {str(k): int(v) for k, v in raw.get("scalars", {}).items()}  # SparseAdam's step counts
        rng = load_file(str(path / "rng.safetensors"))
    except Exception as e:  # json/safetensors/TypeError for truncated or foreign files
        raise TextbenchError(f"{path}: corrupt checkpoint ({type(e).__name__}: {e}); rerun without --resume") from None
    if state.num_labels != expect.num_labels:
        raise TextbenchError(
            f"{path}: checkpoint has {state.num_labels} labels but the data has "
            f"{expect.num_labels}; rerun without --resume"
        )
    if state.fingerprint != expect.fingerprint:
        raise TextbenchError(
            f"{path}: checkpoint was trained with other params or data (fingerprint "
            f"{state.fingerprint} ≠ {expect.fingerprint}); rerun without --resume"
        )
    state.best_score = float("-inf") if state.best_score is None else state.best_score
    load_weights(model, path / paths.WEIGHTS)
    per_param: dict[int, dict[str, Any]] = {}
    for key, value in [*opt_tensors.items(), *opt_scalars.items()]:
        idx, name = key.split(".", 1)
        per_param.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": per_param, "param_groups": raw["param_groups"]})
    torch.set_rng_state(rng["torch_cpu"])
    if torch.cuda.is_available():
        torch.cuda.set_rng_state_all(
            [rng[f"torch_cuda{i}"] for i in range(torch.cuda.device_count()) if f"torch_cuda{i}" in rng]
        )
    return state, best
