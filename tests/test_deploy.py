"""`textbench schedule`: the rerun deployment registers on a local Prefect server and a run completes,
executing `dvc repro` in the project dir itself (so dvc.lock records it)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import live_pids
from flows.deploy import rerun, schedule
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


def start_schedule(project: Path, tmp_path: Path, prefect_server: str, name: str, *extra: str) -> subprocess.Popen:
    """`textbench schedule` serving `project` as deployment `textbench-rerun/<name>` against the test
    server, in its own process group (stderr piped)."""
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
    }
    cmd = [sys.executable, "-m", "pipeline", "schedule", "--cron", "0 3 * * *", "--name", name, *extra]
    return subprocess.Popen(
        cmd, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def registered(client, serve: subprocess.Popen, name: str):
    """The deployment `serve` registers, once the server has it (the served process must stay up)."""
    for _ in range(240):
        try:
            return client.read_deployment_by_name(f"textbench-rerun/{name}")
        except Exception:
            assert serve.poll() is None, serve.stderr.read().decode()
            time.sleep(0.25)
    raise AssertionError("the deployment never registered")


def test_schedule_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(TextbenchError, match="no dvc.yaml"):
        schedule(tmp_path, "0 3 * * *")
    project = dvc_project(tmp_path / "p")
    with pytest.raises(TextbenchError, match="--cron 'every night'"):
        schedule(project, "every night")
    with pytest.raises(TextbenchError, match="program not found"):
        schedule(project, "0 3 * * *", command="no-such-tool repro")


def test_a_run_cannot_choose_what_it_executes(tmp_path: Path) -> None:
    """Runs take no parameters: the command and project dir come from the serving process only."""
    with pytest.raises(Exception, match="command"):
        rerun.validate_parameters({"project_dir": str(tmp_path), "command": "touch pwned"})
    with pytest.raises(TextbenchError, match="only under `textbench schedule`"):
        rerun.fn()
    assert not (tmp_path / "pwned").exists()


@pytest.mark.slow
def test_deployment_registers_and_a_run_reproduces_the_pipeline(tmp_path: Path, prefect_server: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    project = dvc_project(tmp_path / "project")
    serve = start_schedule(project, tmp_path, prefect_server, "t")
    try:
        with get_client(sync_client=True) as client:
            deployment = registered(client, serve, "t")
        assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * *"]
        assert deployment.parameters == {} and str(project.resolve()) in deployment.description

        run = run_deployment("textbench-rerun/t", timeout=180)
        assert run.state is not None and run.state.is_completed(), run.state
        assert (project / "out.txt").read_text() == "ran"
        assert "hello" in (project / "dvc.lock").read_text()  # DVC recorded the run in the project itself

        try:  # whoever can start a run through the API still cannot pick what it executes
            hostile = run_deployment(
                "textbench-rerun/t", parameters={"project_dir": str(tmp_path), "command": "touch pwned"}, timeout=180
            )
            assert hostile.state is not None and not hostile.state.is_completed(), hostile.state
        except AssertionError:
            raise
        except Exception as e:  # refused by the server
            assert "command" in str(e), e
        assert not (project / "pwned").exists() and not (tmp_path / "pwned").exists()
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()


def pids_of(cmdline: str) -> list[int]:
    """Live processes whose command line is `cmdline`."""
    found = []
    for pid in live_pids():
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip() == cmdline.encode():
                found.append(pid)
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_schedule_stops_within_seconds_on_sigint_and_sigterm(
    tmp_path: Path, prefect_server: str, signum: signal.Signals
) -> None:
    """As systemd, Docker or a CI runner stop a service: the served run's command dies too, the
    schedule is paused, one line says so; exit 130/143."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    project = dvc_project(tmp_path / "project")
    name, command = f"stop-{signum.name}", f"sleep {1000 + signum}.{time.time_ns() % 10**6}"  # unique: found by /proc
    serve = start_schedule(project, tmp_path, prefect_server, name, "--command", command)
    try:
        with get_client(sync_client=True) as client:
            registered(client, serve, name)
            run_deployment(f"textbench-rerun/{name}", timeout=0)
            for _ in range(240):
                if pids_of(command):
                    break
                assert serve.poll() is None, serve.stderr.read().decode()
                time.sleep(0.25)
            assert pids_of(command), "the served run never started its command"
            os.kill(serve.pid, signum)
            start = time.monotonic()
            _, err = serve.communicate(timeout=30)
            took = time.monotonic() - start
            assert client.read_deployment_by_name(f"textbench-rerun/{name}").paused
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(serve.pid, signal.SIGKILL)
    text = err.decode()
    assert serve.returncode == 128 + signum and took < 5, (serve.returncode, took, text[-3000:])
    assert "Traceback" not in text and text.splitlines()[-1].startswith(f"stopped by {signum.name}:"), text[-3000:]
    time.sleep(0.5)
    assert not pids_of(command)
