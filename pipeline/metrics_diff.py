"""Markdown of `dvc metrics diff` and `dvc params diff` between two revisions (the PR comment).

Scores (reports/metrics.json) come first; cost figures (reports/cost.json: parameters, times, throughput,
memory, which differ between identical runs; also in a base's metrics.json from before that split) sit in a
collapsed section. Runs locally too: `textbench diff --base main` compares main with the workspace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline import paths
from pipeline.errors import TextbenchError
from pipeline.report.sections import COST_COLUMNS

# a cost figure wherever it lies: in cost.json, or in a metrics.json from before the split (where the
# parameter count was `params`)
COST_NAMES = {key for _, key, _, _ in COST_COLUMNS} | {"params"}


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
    rows: dict[bool, list[list[str]]] = {False: [], True: []}  # is cost → rows
    for path, metrics in sorted(changed.items()):
        for name, d in sorted(metrics.items()):
            rows[path == cost_file or name.rpartition(".")[2] in COST_NAMES].append(
                [name, _number(d.get("old")), _number(d.get("new")), _number(d.get("diff"), signed=True)]
            )
    scores, cost = rows[False], rows[True]
    sections = [
        f"## textbench: `{base}` → `{target}`",
        "### Scores\n\n" + (_table(header, scores) if scores else "No scores changed."),
    ]
    if cost:
        sections.append(
            f"<details><summary>Cost: {len(cost)} changed (parameters, times, throughput, memory)"
            f"</summary>\n\n{_table(header, cost)}\n\n</details>"
        )
    else:
        sections.append("No cost figures changed.")
    params = _dvc(["params", "diff", *revs, "--md"], repo)
    changed_params = params.splitlines()[2:]  # below the header and the |---| line
    sections.append(f"### Params\n\n{params if changed_params else 'No params changed.'}")
    return "\n\n".join(sections) + "\n"


def _number(v: object, signed: bool = False) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "—" if v is None else str(v)
    if isinstance(v, int):  # counts, e.g. parameters: exact
        return f"{v:+d}" if signed else str(v)
    return f"{v:+.4g}" if signed else f"{v:.6g}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
