"""Scheduled reruns from the Prefect UI: a deployment whose runs execute `dvc repro` in the project.

`textbench schedule --cron "0 3 * * *"` registers the deployment `textbench-rerun/<name>` on the
Prefect server (PREFECT_API_URL) and serves it: scheduled runs and "Run" clicks in the UI execute
`dvc repro` (or `dvc exp run ...`) in the project directory itself, so dvc.lock stays the record of
what ran. Stopping the command (Ctrl-C, SIGTERM) cancels a run in progress and pauses the schedule.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shlex
import shutil
import sys
import threading
import time
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.deployments.runner import EntrypointType

from flows.proc import die_with_parent, run_streaming
from pipeline.errors import TextbenchError

DEFAULT_COMMAND = "dvc repro"
# What a run executes, fixed by the serving process and inherited by each run's process: nothing a
# run started through the Prefect API (or its UI) can change, unlike flow parameters.
PROJECT_ENV, COMMAND_ENV = "TEXTBENCH_RERUN_PROJECT", "TEXTBENCH_RERUN_COMMAND"
STOP_S = 4.0  # how long stopping may take: cancel the run in progress, pause the schedule


def tool_env() -> dict[str, str]:
    """This environment with the interpreter's bin dir first on PATH (finds dvc and textbench in a venv)."""
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([bindir, os.environ.get("PATH", "")])}


@flow(name="textbench-rerun", log_prints=True)
def rerun() -> None:
    """Run the served command in the served project dir; fail with its last `error` line. No
    parameters: `textbench schedule` fixed both when it started serving."""
    if not os.environ.get(PROJECT_ENV) or not os.environ.get(COMMAND_ENV):
        raise TextbenchError(
            f"{PROJECT_ENV} and {COMMAND_ENV} are not set: textbench-rerun runs only "
            "under `textbench schedule`, which sets them"
        )
    die_with_parent(os.getppid())  # the runner that started this run: stopping `textbench schedule` stops it
    project, command = Path(os.environ[PROJECT_ENV]), os.environ[COMMAND_ENV]
    log = get_run_logger()
    log.info(f"{project}: {command}")
    code, error = run_streaming(shlex.split(command), tool_env(), project, log)
    if code != 0:
        raise TextbenchError(error or f"`{command}` exited with status {code} in {project}")


def schedule(project_dir: Path, cron: str, command: str = DEFAULT_COMMAND, name: str = "nightly") -> None:
    """Register `textbench-rerun/<name>` with a cron schedule and serve its runs until SIGINT/SIGTERM
    (the CLI's `Interrupted`), which cancel a run in progress and pause the schedule within seconds."""
    from prefect.runner import Runner
    from prefect.schedules import Cron

    if not (project_dir / "dvc.yaml").is_file():
        raise TextbenchError(f"{project_dir}: no dvc.yaml here; run from the textbench project root")
    if not shlex.split(command) or shutil.which(shlex.split(command)[0], path=tool_env()["PATH"]) is None:
        raise TextbenchError(f"--command '{command}': program not found on PATH")
    try:
        schedules = [Cron(cron)]
    except ValueError as e:
        raise TextbenchError(f"--cron '{cron}': not a cron expression ({e})") from None
    os.environ.update({PROJECT_ENV: str(project_dir.resolve()), COMMAND_ENV: command})  # inherited by each run
    runner = Runner(name=name, pause_on_shutdown=True, limit=1)
    runner.add_flow(
        rerun,
        name=name,
        schedules=schedules,
        concurrency_limit=1,
        entrypoint_type=EntrypointType.MODULE_PATH,
        description=f"`{command}` in {project_dir.resolve()} (dvc.lock records each run)",
    )
    loop: list[asyncio.AbstractEventLoop] = []
    failed: list[Exception] = []
    done = threading.Event()  # not Thread.join: an interrupted join can mark a running thread dead

    async def serve() -> None:
        loop.append(asyncio.get_running_loop())
        try:
            await runner.start()
        except Exception as e:
            failed.append(e)
        finally:
            done.set()

    # Served off the main thread: there Prefect's runner would take SIGTERM and hang on stopping.
    serving = threading.Thread(target=asyncio.run, args=(serve(),), name="textbench-schedule", daemon=True)
    serving.start()
    print(
        f"serving textbench-rerun/{name} ({cron}): `{command}` in {project_dir.resolve()}; "
        "Ctrl-C or SIGTERM stops and pauses the schedule",
        file=sys.stderr,
    )
    try:
        done.wait()
    finally:
        if not done.is_set() and loop:
            _stop_runs(STOP_S / 2)
            asyncio.run_coroutine_threadsafe(runner.astop(), loop[0])  # then it pauses the schedule
            done.wait(STOP_S / 2)
    if failed:
        raise TextbenchError(f"serving textbench-rerun/{name}: {type(failed[0]).__name__}: {failed[0]}")


def _stop_runs(grace_s: float) -> None:
    """SIGTERM the runs in progress (Prefect's runner starts each as a process of ours; stopping, it
    kills its command's process group), SIGKILL any left after `grace_s`."""
    runs = multiprocessing.active_children()
    for run in runs:
        run.terminate()
    deadline = time.monotonic() + grace_s
    for run in runs:
        run.join(max(0.0, deadline - time.monotonic()))
        if run.is_alive():
            run.kill()
            run.join(1.0)
