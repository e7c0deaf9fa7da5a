"""`textbench schedule`: the rerun deployment registers on a local Prefect server and a run completes,
executing `dvc repro` in the project dir itself (so dvc.lock records it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.deploy import schedule
from pipeline.errors import TextbenchError

DVC_YAML = """stages:
  hello:
    cmd: python -c "open('out.txt', 'w').write('ran')"
    outs: [out.txt]
"""


def dvc_project(path: Path) -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=path, check=True)
    (path / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
    return path


def test_schedule_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(TextbenchError, match="no dvc.yaml"):
        schedule(tmp_path, "0 3 * * *")
    project = dvc_project(tmp_path / "p")
    with pytest.raises(TextbenchError, match="--cron 'every night'"):
        schedule(project, "every night")
    with pytest.raises(TextbenchError, match="program not found"):
        schedule(project, "0 3 * * *", command="no-such-tool repro")


@pytest.mark.slow
def test_deployment_registers_and_a_run_reproduces_the_pipeline(tmp_path: Path, prefect_server: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    project = dvc_project(tmp_path / "project")
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PREFECT_RUNNER_POLL_FREQUENCY": "1",
           "PREFECT_HOME": str(tmp_path / "prefect-home")}
    serve = subprocess.Popen([sys.executable, "-m", "pipeline", "schedule", "--cron", "0 3 * * *", "--name", "t"],
                             cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        deployment = None
        with get_client(sync_client=True) as client:
            for _ in range(240):
                try:
                    deployment = client.read_deployment_by_name("textbench-rerun/t")
                    break
                except Exception:
                    assert serve.poll() is None, serve.stdout.read().decode()
                    time.sleep(0.5)
        assert deployment is not None, "the deployment never registered"
        assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * *"]
        assert deployment.parameters["project_dir"] == str(project.resolve())

        run = run_deployment("textbench-rerun/t", timeout=180)
        assert run.state is not None and run.state.is_completed(), run.state
        assert (project / "out.txt").read_text() == "ran"
        assert "hello" in (project / "dvc.lock").read_text()  # DVC recorded the run in the project itself
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
