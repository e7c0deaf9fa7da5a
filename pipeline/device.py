"""Where and in which precision torch runs: the one device and bfloat16 policy of training, feature
extraction, prediction, serving and export."""

from __future__ import annotations

import contextlib
import os

import torch

from pipeline.errors import TextbenchError


def pick_device(spec: str, threads: int | None = 0, key: str = "train.device") -> torch.device:
    """`auto` = CUDA when present, else CPU with `threads` intra-op threads (0 = the share the flow's CPU
    slot gives in $TEXTBENCH_THREADS, else all cores; None = torch's own setting). A CUDA device that is not there is an error
    naming `key`, where the user set it."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise TextbenchError(f"{key}: '{spec}' requested but no CUDA device is available; use auto or cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise TextbenchError(f"{key}: '{spec}' is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu" and threads is not None:
        torch.set_num_threads(threads or int(os.environ.get("TEXTBENCH_THREADS") or 0) or os.cpu_count() or 1)
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 natively: CUDA with bf16, CPUs with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def pick_precision(spec: str, device: torch.device) -> str:
    """`auto`: bf16 where `device` has it natively (native_bf16), else fp32; otherwise `spec` as given."""
    if spec != "auto":
        return spec
    return "bf16" if native_bf16(device) else "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
