"""atomic_dir: a swap killed between its two renames is repaired by the next one, and what killed
runs left beside the output is swept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from pipeline.io import atomic_dir


def test_a_swap_killed_between_its_renames_is_recovered_and_leftovers_swept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "v").write_text("1")
    # a real process killed (SIGKILL) right after the first rename: only `.out.old` is left
    code = textwrap.dedent(f"""
        import os, signal
        from pipeline import io
        real = os.replace
        def replace(src, dst):
            real(src, dst)
            if str(dst).endswith(".out.old"):
                os.kill(os.getpid(), signal.SIGKILL)
        io.os.replace = replace
        with io.atomic_dir({str(out)!r}) as tmp:
            (tmp / "v").write_text("2")
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert not out.exists() and (tmp_path / ".out.old").is_dir()
    stale = tmp_path / ".out.abcd_123.tmp"  # a killed run's temp dir
    stale.mkdir()
    others = [tmp_path / ".out.x.abcd_123.tmp", tmp_path / ".outer.abcd_123.tmp", tmp_path / "keep.tmp"]
    for d in others:
        d.mkdir()

    failed = None
    try:
        with atomic_dir(out):
            assert (out / "v").read_text() == "1"  # the last complete version is back before anything runs
            raise RuntimeError("this run fails too")
    except RuntimeError as e:
        failed = e
    assert failed is not None and (out / "v").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", *(d.name for d in others)])

    with atomic_dir(out) as tmp:
        (tmp / "v").write_text("3")
    assert (out / "v").read_text() == "3" and not (tmp_path / ".out.old").exists()
    assert os.stat(out).st_mode & 0o777 == 0o755


def test_kept_entries_move_into_the_new_dir_even_after_a_kill(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "seeds" / "7").mkdir(parents=True)
    (out / "seeds" / "7" / "m.json").write_text("seed 7")
    (out / "old.txt").write_text("replaced")
    with atomic_dir(out, keep=("seeds",)) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt", "seeds"]
    assert (out / "seeds" / "7" / "m.json").read_text() == "seed 7"

    # killed after the swap, before `seeds/` moved over: the next write of the dir moves it
    os.replace(out / "seeds", tmp_path / "parked")
    (tmp_path / ".run.old").mkdir()
    os.replace(tmp_path / "parked", tmp_path / ".run.old" / "seeds")
    with atomic_dir(out, keep=("seeds",)) as tmp:
        (tmp / "newer.txt").write_text("newer")
    assert sorted(p.name for p in out.iterdir()) == ["newer.txt", "seeds"] and not (tmp_path / ".run.old").exists()
