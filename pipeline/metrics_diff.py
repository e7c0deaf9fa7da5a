"""Markdown of `dvc metrics diff` and `dvc params diff` between two revisions (the PR comment).

Scores (reports/metrics.json) come first; cost figures (reports/cost.json: times, throughput, memory,
which differ between identical runs) sit in a collapsed section. Runs locally too: `textbench diff
--base main` compares main with the workspace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline import paths
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
    """A markdown report from `base` to `head` (default: workspace): changed scores, changed cost figures
    (collapsed), changed params."""
    revs = [base] + ([head] if head else [])
    target = head or "workspace"
    changed: dict[str, dict[str, dict]] = json.loads(_dvc(["metrics", "diff", *revs, "--json"], repo) or "{}")
    cost_file = paths.cost_json().relative_to(paths.root()).as_posix()
    header = ["Metric", f"`{base}`", f"`{target}`", "Change"]
    scores = _rows({p: d for p, d in changed.items() if p != cost_file})
    cost = _rows({p: d for p, d in changed.items() if p == cost_file})
    sections = [f"## textbench: `{base}` → `{target}`",
                "### Scores\n\n" + (_table(header, scores) if scores else "No scores changed.")]
    if cost:
        sections.append(f"<details><summary>Cost: {len(cost)} changed ({cost_file}: parameters, times, "
                        f"throughput, memory)</summary>\n\n{_table(header, cost)}\n\n</details>")
    else:
        sections.append("No cost figures changed.")
    params = _dvc(["params", "diff", *revs, "--md"], repo)
    rows = params.splitlines()[2:]  # below the header and the |---| line
    sections.append(f"### Params\n\n{params if rows else 'No params changed.'}")
    return "\n\n".join(sections) + "\n"


def _rows(files: dict[str, dict[str, dict]]) -> list[list[str]]:
    """One row per changed metric: name, old, new, change ('—' where a side lacks it)."""
    return [[name, _number(d.get("old")), _number(d.get("new")), _number(d.get("diff"), signed=True)]
            for _, metrics in sorted(files.items()) for name, d in sorted(metrics.items())]


def _number(v: object, signed: bool = False) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "—" if v is None else str(v)
    if isinstance(v, int):  # counts, e.g. parameters: exact
        return f"{v:+d}" if signed else str(v)
    return f"{v:+.4g}" if signed else f"{v:.6g}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
