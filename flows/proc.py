"""Run a child process with its output streamed line by line to a (Prefect) logger."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

_children: set[subprocess.Popen[bytes]] = set()


def kill_children() -> None:
    """Kill every child started by `run_streaming` that still runs (with its own subprocesses)."""
    for proc in list(_children):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_streaming(cmd: list[str], env: dict[str, str], cwd: Path, log: Any) -> tuple[int, str]:
    """Run `cmd`, sending each output line to `log`; return (exit status, last `error:` line).

    The child gets its own process group, killed if this task is interrupted or `kill_children` runs.
    """
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    _children.add(proc)
    error, pending = "", b""
    try:
        assert proc.stdout is not None
        while chunk := proc.stdout.read1(65536):  # progress bars end lines with \r: log them as they come
            *lines, pending = re.split(rb"[\r\n]", pending + chunk)
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip()
                if line.strip():
                    log.info(line)
                if line.startswith("error:"):
                    error = line.strip()
        if pending.strip():
            log.info(pending.decode("utf-8", "replace").rstrip())
            error = pending.decode("utf-8", "replace").strip() if pending.startswith(b"error:") else error
        return proc.wait(), error
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        _children.discard(proc)
