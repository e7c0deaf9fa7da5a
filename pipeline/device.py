"""Where and in which precision torch runs: the one device and bfloat16 policy of training, feature
extraction, prediction, serving and export; and `describe`, the record of where a run ran.

The same commit, params and seed give different scores on an AVX2 CPU (fp32) and on an AMX CPU
(`precision: auto` = bf16), so every training records `describe` beside its scores (metrics.json `env`,
typed as `RunEnv` in pipeline/artifacts.py); the report gathers them into reports/environment.json,
which its header and `textbench diff` read."""

from __future__ import annotations

import contextlib
import os
import platform
from importlib import metadata
from pathlib import Path

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


# instruction sets that choose CPU kernels (and bf16 support): the ones that make two CPUs differ
ISA = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


def describe(device: torch.device, precision: str) -> dict[str, object]:
    """The record of a run on `device` in `precision` (after pick_device set its threads)."""
    cuda = device.type == "cuda"
    return {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if cuda else "",  # the GPU's name
        "cpu": cpu_model(),
        "isa": cpu_isa(),
        "precision": precision,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
    }


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what platform says)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine() or "unknown"


def cpu_isa() -> list[str]:
    """The kernel-choosing instruction sets (ISA) this CPU has, in ISA order ([] without /proc/cpuinfo)."""
    flags: set[str] = set()
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            break
    return [f for f in ISA if f in flags]


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
