"""Local corpora in the layouts users have: a minimal entry under `dvc repro`, folder/archive trees per
split and class (aclImdb, 20 Newsgroups by-date), `classes:`, headerless tables with `columns:`, several
text columns; each wrong layout is one error naming the key and the path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, base_params, write_params

MINIMAL = {"kind": "local", "language": "en", "path": "corpus.csv"}


@pytest.mark.slow  # git + dvc + three textbench processes
def test_minimal_local_entry_runs_under_dvc_repro(tmp_path: Path) -> None:
    """DVC checks every param a stage declares exists: a stage naming a key the minimal entry lacks
    (max_len, encoder) fails before running, so the stages must declare the whole section."""
    for name in ("dvc.yaml", "pipeline", "flows"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(
            REPO / name,
            tmp_path / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}),
        )
    params = base_params()
    params["datasets"] = {"mini": MINIMAL}
    params["benchmark"]["datasets"] = ["mini"]
    write_params(tmp_path, params)
    rows = "".join(f"word{i % 7} text number {i},{'pos' if i % 2 else 'neg'}\n" for i in range(60))
    (tmp_path / "corpus.csv").write_text("text,label\n" + rows, encoding="utf-8")
    env = {**os.environ, "TEXTBENCH_ROOT": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    run = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "tokenize@mini"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "data/tokenized/mini").is_dir()
