"""Run a child process with its output streamed line by line to a (Prefect) logger."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any


def run_streaming(cmd: list[str], env: dict[str, str], cwd: Path, log: Any) -> tuple[int, str]:
    """Run `cmd`, sending each output line to `log`; return (exit status, last `error:` line).

    The child gets its own process group, which is killed if this task is interrupted.
    """
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    error = ""
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            for line in raw.decode("utf-8", "replace").replace("\r", "\n").splitlines():
                if line.strip():
                    log.info(line.rstrip())
                if line.startswith("error:"):
                    error = line.strip()
        return proc.wait(), error
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
