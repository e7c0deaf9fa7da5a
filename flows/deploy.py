"""Scheduled reruns from the Prefect UI: a deployment whose runs execute `dvc repro` in the project.

`textbench schedule --cron "0 3 * * *"` registers the deployment `textbench-rerun/<name>` on the
Prefect server (PREFECT_API_URL) and serves it: scheduled runs and "Run" clicks in the UI execute
`dvc repro` (or `dvc exp run ...`) in the project directory itself, so dvc.lock stays the record of
what ran. Stopping the command (Ctrl-C) pauses the schedule.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.deployments.runner import EntrypointType

from flows.proc import run_streaming
from pipeline.errors import TextbenchError

DEFAULT_COMMAND = "dvc repro"


def tool_env() -> dict[str, str]:
    """This environment with the interpreter's bin dir first on PATH (finds dvc and textbench in a venv)."""
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([bindir, os.environ.get("PATH", "")])}


@flow(name="textbench-rerun", log_prints=True)
def rerun(project_dir: str, command: str = DEFAULT_COMMAND) -> None:
    """Run `command` (a DVC command line) in `project_dir`; fail with its last `error` line."""
    log = get_run_logger()
    project = Path(project_dir)
    if not (project / "dvc.yaml").is_file():
        raise TextbenchError(f"{project}: no dvc.yaml here; schedule from the textbench project root")
    log.info(f"{project}: {command}")
    code, error = run_streaming(shlex.split(command), tool_env(), project, log)
    if code != 0:
        raise TextbenchError(error or f"`{command}` exited with status {code} in {project}")


def schedule(project_dir: Path, cron: str, command: str = DEFAULT_COMMAND, name: str = "nightly") -> None:
    """Register `textbench-rerun/<name>` with a cron schedule and serve its runs until interrupted."""
    from prefect.schedules import Cron

    if not (project_dir / "dvc.yaml").is_file():
        raise TextbenchError(f"{project_dir}: no dvc.yaml here; run from the textbench project root")
    if not shlex.split(command) or shutil.which(shlex.split(command)[0], path=tool_env()["PATH"]) is None:
        raise TextbenchError(f"--command '{command}': program not found on PATH")
    try:
        schedules = [Cron(cron)]
    except ValueError as e:
        raise TextbenchError(f"--cron '{cron}': not a cron expression ({e})") from None
    rerun.serve(name=name, schedules=schedules, parameters={"project_dir": str(project_dir.resolve()),
                                                            "command": command},
                limit=1, global_limit=1, entrypoint_type=EntrypointType.MODULE_PATH,
                description=f"`{command}` in {project_dir.resolve()} (dvc.lock records each run)")
