"""Device slots: at most one training process per GPU at a time; on a machine without GPUs,
`orchestration.cpu_slots` processes at a time, each with its share of the cores.

A slot is held with an exclusive `flock` on `<lock_dir>/<host>-<slot>.lock`, so the guarantee holds
across threads, Dask worker processes and concurrent `textbench benchmark`s sharing a lock dir, and a
crashed holder releases its slot automatically (the kernel drops the lock with the process).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from pipeline.config import OrchestrationConfig
from pipeline.errors import TextbenchError

CPU = "cpu"  # the CPU slot; with several CPU slots: cpu0, cpu1, ...


def detect_gpus() -> list[str]:
    """Ids of the CUDA devices this process may use ([] when there are none)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # no torch / broken driver: train on the CPU
        return []


def cpu_slot_ids(n: int) -> list[str]:
    return [CPU] if n <= 1 else [f"{CPU}{i}" for i in range(n)]


def is_cpu(slot: str) -> bool:
    return slot.startswith(CPU)


def auto_cpu_slots(cores: int | None = None) -> int:
    """One training per core up to 4 (small RNN/CNN steps do not spread over many threads, so two
    single-thread trainings on 2 cores get more done than one with two threads), then more threads each."""
    return max(1, min(cores or os.cpu_count() or 1, 4))


def resolve_slots(gpus: str, detected: list[str] | None = None, cpu_slots: int = 1) -> list[str]:
    """Slots for `orchestration.gpus`: `auto` (detected GPUs, else `cpu_slots` CPU slots), `none`
    (CPU slots), or "0,1"."""
    spec = gpus.strip().lower()
    if spec == "none":
        return cpu_slot_ids(cpu_slots)
    if spec == "auto":
        found = detect_gpus() if detected is None else detected
        return found or cpu_slot_ids(cpu_slots)
    ids = [g.strip() for g in spec.split(",") if g.strip()]
    if not ids or not all(g.isdigit() for g in ids):
        raise TextbenchError(f"orchestration.gpus: '{gpus}' is not auto, none or device ids like \"0,1\"")
    return list(dict.fromkeys(ids))


def slot_env(slot: str, threads: int = 0) -> dict[str, str]:
    """Environment for a training process in `slot`: pinned to one GPU, or hidden from all GPUs and,
    with `threads`, told how many CPU threads are its share (TEXTBENCH_THREADS, read by the trainer)."""
    if not is_cpu(slot):
        return {"CUDA_VISIBLE_DEVICES": slot}
    return {"CUDA_VISIBLE_DEVICES": "", **({"TEXTBENCH_THREADS": str(threads)} if threads else {})}


@contextlib.contextmanager
def hold_slot(slots: list[str], lock_dir: Path, poll_s: float = 0.2) -> Iterator[str]:
    """Block until one of `slots` is free, hold it for the duration of the block, yield its id."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    while True:
        for slot in slots:
            fd = os.open(lock_dir / f"{host}-{slot}.lock", os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield slot
                return
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        time.sleep(poll_s)


def device_slots(orch: OrchestrationConfig) -> list[str]:
    """The slots of `orchestration`: its GPUs, else `cpu_slots` (0 = auto) CPU slots."""
    return resolve_slots(orch.gpus, cpu_slots=orch.cpu_slots or auto_cpu_slots())
