"""Markdown of `dvc metrics diff` and `dvc params diff` between two revisions (the PR comment).

Runs locally too: `textbench diff --base main` compares main with the workspace.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipeline.errors import TextbenchError


def _dvc(args: list[str], repo: Path) -> str:
    """Output of `dvc <args>` run with this interpreter's DVC; its failure is a TextbenchError."""
    cmd = [sys.executable, "-m", "dvc", *args]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise TextbenchError(f"`dvc {' '.join(args)}` failed in {repo}: {last}")
    return proc.stdout.strip()


def metrics_diff_markdown(base: str, head: str | None = None, repo: Path = Path(".")) -> str:
    """A markdown report: changed metrics and changed params from `base` to `head` (default: workspace)."""
    revs = [base] + ([head] if head else [])
    target = head or "workspace"
    sections = [f"## textbench: `{base}` → `{target}`"]
    for kind, title in (("metrics", "Metrics"), ("params", "Params")):
        table = _dvc([kind, "diff", *revs, "--md"], repo)
        rows = table.splitlines()[2:]  # below the header and the |---| line
        sections.append(f"### {title}\n\n{table if rows else f'No {kind} changed.'}")
    return "\n\n".join(sections) + "\n"
