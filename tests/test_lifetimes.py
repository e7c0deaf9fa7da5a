"""No process outlives its run: the temporary Prefect server a run starts dies with the run, even
when the run is killed by `kill -9` (trainers: tests/test_flow.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, alive

# A run as `textbench benchmark` starts it (flows/benchmark.run_benchmark): the temporary server first,
# then the flow. It prints the server's pid and waits to be killed.
RUN = """
import os, sys, time
from flows.benchmark import prefect_defaults
from flows.proc import start_temporary_server
from prefect.server.api.server import SubprocessASGIServer
with prefect_defaults():
    start_temporary_server()
    print(SubprocessASGIServer().server_process.pid, flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux only")
def test_temporary_prefect_server_dies_with_a_killed_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(REPO)}
    run = subprocess.Popen([sys.executable, "-c", RUN], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    server = 0
    try:
        assert run.stdout is not None
        server = int(run.stdout.readline())  # printed once the server answers /health
        assert alive(server)
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + 10
        while alive(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(server), f"temporary Prefect server {server} outlived its run"
    finally:
        run.kill()
        if server and alive(server):
            os.kill(server, signal.SIGKILL)
