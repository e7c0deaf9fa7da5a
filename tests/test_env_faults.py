"""Faults of the machine, not of textbench (issue 23.5): a full disk (ENOSPC), a read-only file system
(EROFS), a forbidden directory (EACCES) end any command with one `error:` line naming the path (and the
free space when the disk is full), exit 2, no traceback, and the earlier outputs intact — one handler at
the CLI boundary (pipeline/cli.py), whichever stage and whichever writer (pyarrow, a text file) failed."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import REPO
from serve_models import model_dir
from test_artifacts import run_cli
from test_tokenize import EN, write_prepared

ERRNOS = [errno.ENOSPC, errno.EROFS, errno.EACCES]


def failing(code: int, filename: str | None = None):
    """A write that fails as the OS makes it: pyarrow and file objects name no file, mkstemp its temp file."""

    def fail(*_args, **_kwargs):
        raise OSError(code, os.strerror(code), *([filename] if filename else []))

    return fail


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def tokenize(project: Path):
    write_prepared(project, "reuters", EN)
    return ["tokenize", "-d", "reuters", "-s", "vocab"], project / "data" / "tokenized" / "reuters" / "vocab"


def profile(project: Path):
    shutil.copytree(REPO / "profiles", project / "profiles")
    return ["profile", "ci"], project / "params.yaml"


def predict(project: Path):
    (project / "in.csv").write_text("text\nthe goal\nstock rose\n", encoding="utf-8")
    out = project / "in.predictions.parquet"
    return ["predict", str(model_dir("textcnn")), str(project / "in.csv"), "-o", str(out)], out


COMMANDS = {  # the command, the output it writes, the writes to break
    "tokenize": (tokenize, ["pyarrow.parquet.ParquetWriter.write_table"]),
    "profile": (profile, ["pathlib.Path.write_text"]),
    "predict": (predict, ["pyarrow.parquet.ParquetWriter.write_table"]),
}


@pytest.mark.parametrize("code", ERRNOS, ids=errno.errorcode.get)
@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("at", ["write", "create"])
def test_environment_faults_are_one_line_naming_the_path(project, capsys, monkeypatch, command, code, at):
    setup, targets = COMMANDS[command]
    args, output = setup(project)
    assert run_cli(args, capsys, monkeypatch)[0] == 0  # a good run first: its outputs must survive
    if command == "profile":
        args = ["profile", "paper"]
    before = snapshot(project)
    if at == "write":  # the data write itself fails (naming no file)
        for target in targets:
            monkeypatch.setattr(target, failing(code))
    else:  # creating the output's temp file or dir fails (the OS names that)
        temp = str(output.parent / f".{output.name}.k2j4x9.tmp")
        monkeypatch.setattr(tempfile, "mkstemp", failing(code, temp))
        monkeypatch.setattr(tempfile, "mkdtemp", failing(code, temp))
    status, err = run_cli(args, capsys, monkeypatch)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in err, err
    named = Path(errors[0].removeprefix("error: ").split(": ")[0])  # as given: relative to the project
    assert (project / named).resolve() == output.resolve(), errors[0]
    assert ("MiB free" in errors[0]) == (code == errno.ENOSPC), errors[0]
    assert snapshot(project) == before  # the earlier outputs intact, no temp files left


def test_other_os_errors_are_not_disguised(capsys, monkeypatch, project):
    """Only faults of the environment get the one line: any other OSError is a bug and keeps its traceback."""
    args, _ = tokenize(project)
    monkeypatch.setattr("pyarrow.parquet.ParquetWriter.write_table", failing(errno.EBADF))
    with pytest.raises(OSError):
        run_cli(args, capsys, monkeypatch)


# root writes into read-only directories anyway, unless it drops the capability that lets it
AS_USER = ["setpriv", "--bounding-set=-dac_override", "--inh-caps=-dac_override"] if os.geteuid() == 0 else []


@pytest.mark.skipif(bool(AS_USER) and not shutil.which("setpriv"), reason="root, and no setpriv to drop its rights")
def test_a_real_read_only_directory(project):
    args, output = tokenize(project)
    output.parent.mkdir(parents=True)
    output.parent.chmod(0o555)
    try:
        command = [*AS_USER, sys.executable, "-m", "pipeline", *args]
        proc = subprocess.run(command, capture_output=True, text=True, cwd=project)
    finally:
        output.parent.chmod(0o755)
    assert proc.returncode == 2 and proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{output}: permission denied" in proc.stderr
    assert not any(output.parent.iterdir())
