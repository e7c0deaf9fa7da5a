"""Markdown of `dvc metrics diff` and `dvc params diff` between two revisions (the PR comment).

It opens with one verdict line: each (dataset, model) whose test predictions changed is tested on the
same test documents, base against head (reports/outcomes.json of both): McNemar's exact test on
accuracy and a paired bootstrap on macro-F1, at the head report's significance level. A change is
*real* when either p < 1 - report.confidence, *within noise* otherwise, *not comparable* when the test
documents, their gold labels or the classes differ; identical predictions are *unchanged* and not
retested. Where the base ran a model with several seeds (`benchmark.seeds`), a significant change of a
score counts only when the head's score lies outside the base's seed range of it: another seed moves it
that far without any change. reports/environment.json of both says when base and head ran on other
hardware or numerics.
Scores (reports/metrics.json) come next; cost figures (reports/cost.json: parameters, times, throughput,
memory, which differ between identical runs; also in a base's metrics.json from before that split) sit in a
collapsed section. Runs locally too: `textbench diff --base main` compares main with the workspace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.artifacts import A, DatasetOutcomes, Environments, ModelOutcome, Outcomes, RunEnv
from pipeline.errors import TextbenchError
from pipeline.report import stats
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
    verdict, tested = _verdicts(base, head, repo)
    sections = [
        verdict,
        f"## textbench: `{base}` → `{target}`",
        *tested,
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


# --- base vs head runs of one model, on the same test documents ------------------------------------

REAL, NOISE, APART, SAME = "real", "within noise", "not comparable", "unchanged"


@dataclass(frozen=True)
class Change:
    """One (dataset, model) from base to head: its verdict and the table cells that back it."""

    row: str
    verdict: str
    direction: str = ""  # real changes: better | worse | mixed
    cells: tuple[str, ...] = ()
    note: str = ""  # why a significant change is still within noise (the base's seed range)


def _verdicts(base: str, head: str | None, repo: Path) -> tuple[str, list[str]]:
    """The opening verdict line, and the blocks under it (environment, tested rows, unchanged rows)."""
    old = _read_at(Outcomes, paths.outcomes_json(), base, repo)
    new = _read_at(Outcomes, paths.outcomes_json(), head, repo)
    missing = [f"`{r}`" for r, o in ((base, old), (head or "workspace", new)) if o is None]
    if old is None or new is None:
        line = (
            f"**Verdict: not tested** — no reports/outcomes.json at {' and '.join(missing)} (a report from before "
            "textbench recorded test predictions): the score changes below are raw."
        )
        return line, []
    envs = (
        _read_at(Environments, paths.environment_json(), base, repo),
        _read_at(Environments, paths.environment_json(), head, repo),
    )
    changes = [c for ds in sorted(old.datasets.keys() | new.datasets.keys()) for c in _dataset(ds, old, new, envs)]
    by = {v: [c for c in changes if c.verdict == v] for v in (REAL, NOISE, APART, SAME)}
    real = by[REAL]
    ways = ", ".join(f"{n} {d}" for d in ("better", "worse", "mixed") if (n := sum(c.direction == d for c in real)))
    line = (
        f"**Verdict: {len(real)} row{'s' * (len(real) != 1)} changed for real{f' ({ways})' if real else ''}, "
        f"{len(by[NOISE])} within noise, {len(by[APART])} not comparable, {len(by[SAME])} unchanged** "
        f"(McNemar on accuracy, paired bootstrap on macro-F1, significant at p < {1 - new.confidence:.2g}"
        + (
            "; inside the base's seed range = within noise"
            if any(m.seeds for d in old.datasets.values() for m in d.models.values())
            else ""
        )
        + ")."
    )
    blocks = [_environment_line(envs)]
    shown = by[REAL] + by[NOISE] + by[APART]
    if shown:
        header = [
            "Row",
            "Verdict",
            "Accuracy",
            "b / c",
            "p (McNemar)",
            "Macro-F1",
            "p (bootstrap)",
            "Base seed range (acc; F1)",
            "Fingerprint",
            "Ran differently",
        ]
        rows = [[c.row, c.verdict + c.note, *c.cells] for c in shown]
        blocks.append("### Verdicts\n\n" + _table(header, rows))
        blocks.append(
            "b = test documents only base got right, c = only head got right; accuracy and macro-F1 base → head. "
            "Base seed range: lowest–highest over the base's seeds of that model (several `benchmark.seeds`); a "
            "significant change whose head score lies inside it is within noise."
        )
    if by[SAME]:
        blocks.append(f"Unchanged (identical test predictions, not retested): {', '.join(c.row for c in by[SAME])}.")
    skipped = sorted({f"{ds} ({why})" for o in (old, new) for ds, why in o.skipped.items()})
    if skipped:
        blocks.append(f"Not retested: {'; '.join(skipped)}.")
    return line, blocks


def _dataset(ds: str, old: Outcomes, new: Outcomes, envs: tuple[Environments | None, ...]) -> list[Change]:
    a, b = old.datasets.get(ds), new.datasets.get(ds)
    models = sorted((a.models.keys() if a else set()) | (b.models.keys() if b else set()))
    if a is None or b is None:
        return [
            Change(f"{ds}.{m}", APART, cells=_apart(f"no {ds} predictions in {'base' if a is None else 'head'}"))
            for m in models
        ]
    apart = _apart_test_sets(a, b)
    out = []
    for m in models:
        row, ma, mb = f"{ds}.{m}", a.models.get(m), b.models.get(m)
        if ma is None or mb is None:
            side = "base" if ma is None else "head"
            out.append(Change(row, APART, cells=_apart(f"no {side} predictions (not run, or on other test documents)")))
        elif apart:
            out.append(Change(row, APART, cells=_apart(apart)))
        elif ma.pred == mb.pred:
            out.append(Change(row, SAME))
        else:
            ran = _env_differences(*(e.of(ds, m) if e else None for e in envs))
            same_fp = ma.fingerprint is not None and ma.fingerprint == mb.fingerprint
            out.append(_test(row, a, (ma, mb), new, "same" if same_fp else "changed", ran))
    return out


def _apart(reason: str) -> tuple[str, ...]:
    return (reason, "", "", "", "", "", "", "")


def _apart_test_sets(a: DatasetOutcomes, b: DatasetOutcomes) -> str:
    """Why two test sets cannot be paired ("" when they can): other classes, documents or gold labels."""
    if a.labels != b.labels:
        return f"the classes differ ({len(a.labels)} → {len(b.labels)})"
    if a.ids_sha256 != b.ids_sha256:
        return f"different test documents ({a.n} → {b.n}: another split or preparation)"
    gold = int(np.sum(a.classes(a.gold) != b.classes(b.gold)))
    return f"the gold labels of {gold} test documents differ" if gold else ""


def _test(
    row: str, ds: DatasetOutcomes, runs: tuple[ModelOutcome, ModelOutcome], new: Outcomes, fp: str, ran: str
) -> Change:
    """McNemar's exact test on accuracy and a paired bootstrap on macro-F1, base vs head; a significant
    score change inside the base's seed range of that score does not count."""
    base, head = (ds.classes(r.pred) for r in runs)
    gold, n_classes, alpha = ds.classes(ds.gold), len(ds.labels), 1 - new.confidence
    test = stats.mcnemar(gold == base, gold == head)
    acc = (float(np.mean(gold == base)), float(np.mean(gold == head)))
    f1 = (stats.macro_f1(gold, base, n_classes), stats.macro_f1(gold, head, n_classes))
    p_f1 = None
    if new.bootstrap:  # the same (n, seed) draws the same resamples: paired
        boots = [stats.bootstrap(gold, pred, n_classes, new.bootstrap, new.seed).macro_f1 for pred in (base, head)]
        p_f1 = stats.paired_bootstrap_p(boots[1] - boots[0])
    tested = [("accuracy", test.p, acc), ("macro_f1", p_f1, f1)]
    significant = [(score, v) for score, p, v in tested if p is not None and p < alpha]
    ranges = {score: runs[0].seed_range(score) for score, _, _ in tested}
    inside = [s for s, v in significant if (r := ranges[s]) is not None and r[0] <= v[1] <= r[1]]
    signs = [np.sign(v[1] - v[0]) for s, v in significant if s not in inside]
    direction = "" if not signs else "better" if min(signs) > 0 else "worse" if max(signs) < 0 else "mixed"
    spread = (
        "—"
        if ranges["accuracy"] is None or ranges["macro_f1"] is None
        else "; ".join(f"{lo:.4f}–{hi:.4f}" for lo, hi in (ranges["accuracy"], ranges["macro_f1"]))
        + f" ({len(runs[0].seeds)} seeds)"
    )
    note = "" if signs or not inside else " (significant, but inside the base's seed range)"
    cells = (
        f"{acc[0]:.4f} → {acc[1]:.4f}",
        f"{test.b} / {test.c}",
        stats.format_p(test.p, alpha),
        f"{f1[0]:.4f} → {f1[1]:.4f}",
        "—" if p_f1 is None else stats.format_p(p_f1, alpha, new.bootstrap),
        spread,
        fp,
        ran,
    )
    return Change(row, REAL if signs else NOISE, direction, cells, note)


def _env_differences(a: RunEnv | None, b: RunEnv | None) -> str:
    """The fields two runs' environments differ in ("—" when either is not recorded)."""
    if a is None or b is None:
        return "—"
    fields = [k for k in RunEnv.model_fields if getattr(a, k) != getattr(b, k)]
    return ", ".join(fields) or "no"


def _environment_line(envs: tuple[Environments | None, ...]) -> str:
    """Whether base and head ran on the same hardware and numerics: each differing field, base → head."""
    old, new = envs
    if old is None or new is None or not old.environments or not new.environments:
        side = "base" if old is None or not old.environments else "head"
        return f"Where the {side} runs ran is not recorded (reports/environment.json)."
    pairs = {(ds, m): (old.environments[i], new.of(ds, m)) for ds, ms in old.runs.items() for m, i in ms.items()}
    diffs: dict[str, set[str]] = {}
    for a, b in pairs.values():
        for k in RunEnv.model_fields:
            if b is not None and getattr(a, k) != getattr(b, k):
                diffs.setdefault(k, set()).add(f"{_value(getattr(a, k))} → {_value(getattr(b, k))}")
    if not diffs:
        return f"Base and head ran alike: {new.environments[0].line()}" + (
            f" (+{len(new.environments) - 1} other environments)" if len(new.environments) > 1 else ""
        )
    return "**Base and head ran differently** — " + "; ".join(f"{k}: {', '.join(sorted(v))}" for k, v in diffs.items())


def _value(v: object) -> str:
    return "+".join(map(str, v)) or "none" if isinstance(v, list) else str(v)


def _read_at(kind: type[A], path: Path, rev: str | None, repo: Path) -> A | None:
    """The artifact `path` at git revision `rev` (None: the workspace), None where it does not exist."""
    rel = path.relative_to(paths.root()).as_posix()
    fix = "rerun `textbench report` and commit it"
    if rev is None:
        file = repo / rel
        return kind.read(file, fix) if file.is_file() else None
    proc = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=repo, capture_output=True, text=True)
    return kind.parse(proc.stdout, f"{rev}:{rel}", fix) if proc.returncode == 0 else None
