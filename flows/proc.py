"""Child processes of the flows: output streamed line by line to a (Prefect) logger, and no child
outliving its parent — killed with it (even by `kill -9`), and on SIGINT/SIGTERM. That holds for
the trainers (`run_streaming`) and for the temporary Prefect server of a run (`start_temporary_server`)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

_children: set[subprocess.Popen[bytes]] = set()
_lock = threading.RLock()  # reentrant: the signal handler may interrupt run_streaming in the main thread
_stopping = threading.Event()
PR_SET_PDEATHSIG = 1


class Stopped(Exception):
    """The run is stopping on SIGINT/SIGTERM: its children were killed and no new one starts."""


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()  # looked up here: a preexec_fn must not load libraries in the forked child


def die_with_parent(parent: int) -> None:
    """Have this process killed when `parent` exits, however it exits: Linux's parent-death signal
    (set at the start of the child, or as its preexec_fn; it fires when the parent's thread that
    started the child ends, so callers start children from a thread that outlives them), elsewhere
    a thread polling the parent pid. Exits at once if `parent` is already gone."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    else:
        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def start_temporary_server() -> None:
    """Without PREFECT_API_URL, start the temporary Prefect server a flow run talks to now, from this
    (the main) thread, as a child that dies with this process, `kill -9` included, by the trainers'
    parent-death signal. Prefect keeps one such server per process (`SubprocessASGIServer()` is one
    instance per port), so the flow's clients reuse this one, and it still stops at exit as before.
    Left to Prefect, it starts as a plain child that a killed run leaves listening."""
    from prefect.server.api import server as prefect_server
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return
    preexec = functools.partial(die_with_parent, os.getpid()) if _PRCTL else None
    bound = types.SimpleNamespace(**vars(subprocess))  # the subprocess module, but Popen sets the signal
    bound.Popen = functools.partial(subprocess.Popen, preexec_fn=preexec)
    with mock.patch.object(prefect_server, "subprocess", bound):  # only that module's name: no other Popen
        prefect_server.SubprocessASGIServer().start()


def kill_children() -> None:
    """Kill every child started by `run_streaming` that still runs (with its process group); from
    then until the next `stop_children_on_signals` block, `run_streaming` starts no new one."""
    with _lock:
        _stopping.set()
        for proc in list(_children):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def stop_children_on_signals() -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM first kill the children (they run in their own
    sessions), then do what they did before: Prefect's handler inside a flow, else an exception.
    Installs handlers only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        kill_children()
        before = previous[signum]
        if callable(before):
            before(signum, frame)
        raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)

    _stopping.clear()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_streaming(cmd: list[str], env: dict[str, str], cwd: Path, log: Any) -> tuple[int, str]:
    """Run `cmd`, sending each output line to `log`; return (exit status, last `error:` line).

    The child gets its own process group, killed if this task is interrupted or `kill_children`
    runs, and on Linux dies with this process (`die_with_parent`). Raises `Stopped` when the run is
    stopping.
    """
    with _lock:
        if _stopping.is_set():
            raise Stopped(f"not started (stopping): {' '.join(cmd)}")
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=functools.partial(die_with_parent, os.getpid()) if _PRCTL else None,
        )
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
        code = proc.wait()
        if _stopping.is_set():
            raise Stopped(f"killed (stopping): {' '.join(cmd)}")
        return code, error
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        _children.discard(proc)
