"""Device slots: at most one training process per GPU (or one on the CPU) at a time.

A slot is held with an exclusive `flock` on `<lock_dir>/<host>-<slot>.lock`, so the guarantee holds
across threads, Dask worker processes and concurrent `textbench run`s sharing a lock dir, and a
crashed holder releases its slot automatically (the kernel drops the lock with the process).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from pipeline.errors import TextbenchError

CPU = "cpu"


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


def resolve_slots(gpus: str, detected: list[str] | None = None) -> list[str]:
    """Slots for `orchestration.gpus`: `auto` (detected GPUs, else CPU), `none` (CPU), or "0,1"."""
    spec = gpus.strip().lower()
    if spec == "none":
        return [CPU]
    if spec == "auto":
        found = detect_gpus() if detected is None else detected
        return found or [CPU]
    ids = [g.strip() for g in spec.split(",") if g.strip()]
    if not ids or not all(g.isdigit() for g in ids):
        raise TextbenchError(f"params.yaml: orchestration.gpus: '{gpus}' is not auto, none or device ids like \"0,1\"")
    return list(dict.fromkeys(ids))


def slot_env(slot: str) -> dict[str, str]:
    """Environment for a training process in `slot`: pinned to one GPU, or hidden from all GPUs."""
    return {"CUDA_VISIBLE_DEVICES": "" if slot == CPU else slot}


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
