"""Is the default run's table a result? Checks every row of the last run against the issue-9 floors.

    .venv/bin/python bench/check_default.py [--params params.yaml]

Reads reports/<ds>/<model>/{metrics,status}.json of `benchmark.datasets × benchmark.models` (what
`make repro` / `dvc repro` wrote) and prints, per row: accuracy, macro-F1, how training stopped,
wall and train seconds, the time outside training, and the floor it must reach. BERT-family rows
whose encoder does not cover the language pass when they are flagged not comparable. Exits 1 when
a row misses its floor, has no result, or the best macro-F1 of a dataset misses its floor.

A floor is missed only when the row is *significantly* below it, not when test noise put it there (the
same commit scores up to 2.7 accuracy points apart on two machines on THUCNews' 940 test documents): a
one-sided exact binomial test of its k right of n test documents against the floor, failed when
p < 1 - report.confidence (equivalently: the one-sided Clopper-Pearson upper bound on its accuracy is
below the floor). Every row with a floor prints that p and bound; a row under its floor within the
noise passes, marked so. The best macro-F1 of a dataset (not a binomial count) is compared as is.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from scipy.stats import binomtest

from pipeline import paths
from pipeline.artifacts import Artifact, RunMetrics, RunStatus
from pipeline.config import load_config
from pipeline.errors import TextbenchError
from pipeline.families import FAMILY, SCHEME_OF_MODEL
from pipeline.report.stats import format_p, p_phrase

# accuracy floors of the default run (seed 42): dataset -> model -> floor; "*" = every other model
FLOORS = {
    "reuters": {
        "tfidf_svm": 0.93,
        "textcnn": 0.88,
        "fasttext": 0.88,
        "dpcnn": 0.85,
        "rnn": 0.70,
        "*classic": 0.80,
        "*linear": 0.90,
        "*bert": 0.90,
    },
    "thucnews": {
        "textcnn": 0.78,
        "fasttext": 0.78,
        "dpcnn": 0.76,
        "rnn": 0.55,
        "*classic": 0.70,
        "*linear": 0.82,
        "*bert": 0.70,
    },
}
BEST = {"reuters": {"accuracy": 0.92, "macro_f1": 0.60}}


def floor(ds: str, model: str) -> float | None:
    table = FLOORS.get(ds, {})
    family = FAMILY[model]
    return table.get(model, table.get(f"*{family}"))


def below_floor(accuracy: float, n: int, need: float, confidence: float) -> tuple[bool, float, float]:
    """Whether an accuracy measured on `n` test documents is significantly below `need`: one-sided exact
    binomial test (H0: true accuracy >= need), significant at 1 - `confidence`; with its p-value and the
    one-sided upper confidence bound on the accuracy (below `need` exactly when significant)."""
    test = binomtest(round(accuracy * n), n, need, alternative="less")
    return bool(test.pvalue < 1 - confidence), float(test.pvalue), float(test.proportion_ci(confidence).high)


def read(load: Callable[..., Artifact | None], *where: Any) -> dict:
    """A run's typed artifact (`load(*where)`) as written; {} when absent or broken (the check then fails that row)."""
    try:
        found = load(*where)
    except TextbenchError:
        return {}
    return found.as_dict() if found else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml", help="the params file the run used")
    args = ap.parse_args()
    cfg = load_config(args.params)
    failures = []
    level = cfg.report.confidence
    print(
        "| dataset | model | accuracy | macro-F1 | training | wall s | train s | outside s | floor "
        f"| p (below floor) | {level:.0%} upper | ok |"
    )
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for ds in cfg.benchmark.datasets:
        best = {"accuracy": 0.0, "macro_f1": 0.0}
        best_n = 0  # test documents of the row with the best accuracy
        for model in cfg.benchmark.models:
            rdir = paths.report_dir(ds, model)
            m = read(RunMetrics.of, rdir)
            st = read(RunStatus.of, ds, model, cfg.benchmark.primary_seed)
            need = floor(ds, model)
            skipped = st.get("status") == "not_comparable"
            flagged = skipped or bool(m.get("not_comparable"))
            acc = m.get("accuracy") if not skipped else None
            n = sum(map(sum, m.get("confusion_matrix") or []))  # its test documents (0: multi-label, untested)
            ok, note, p, upper = acc is not None, "", None, None
            if flagged:
                ok = SCHEME_OF_MODEL[model] == "subword"  # only the BERT family may be excused for its encoder
            elif ok and need is not None and n:
                significant, p, upper = below_floor(acc, n, need, level)
                ok, note = not significant, " (below floor within noise)" if not significant and acc < need else ""
            elif ok and need is not None:  # no count of right documents (multi-label): the floor as is
                ok = acc >= need
            if acc is not None and not flagged:
                if acc > best["accuracy"]:
                    best_n = n
                best = {k: max(best[k], float(m[k])) for k in best}
            wall = st.get("wall_time_s")
            train = m.get("train_time_s")
            outside = (
                wall - train if isinstance(wall, (int, float)) and isinstance(train, (int, float)) and wall else None
            )
            how = "not comparable" if flagged else m.get("stop_reason", "?")
            cells = [
                ds,
                model,
                f"{acc:.4f}" if acc is not None else "—",
                f"{m['macro_f1']:.4f}" if acc is not None else "—",
                how,
                f"{wall:.0f}" if wall else "—",
                f"{train:.0f}" if train is not None and not skipped else "—",
                f"{outside:.0f}" if outside is not None else "—",
                f"{need:.2f}" if need else "—",
                "—" if p is None else format_p(p, 1 - level),
                "—" if upper is None else f"{upper:.4f}",
                ("yes" if ok else "**NO**") + note,
            ]
            print("| " + " | ".join(cells) + " |")
            if not ok:
                failures.append(f"{ds}/{model}")
        for key, need in BEST.get(ds, {}).items():
            missed, test = best[key] < need, ""
            if missed and key == "accuracy" and best_n:  # a count of right documents: noise-aware as above
                missed, p, upper = below_floor(best[key], best_n, need, level)
                test = f"; below it, {p_phrase(p, 1 - level)}, upper {upper:.4f}: " + (
                    "significant" if missed else "within noise"
                )
            if missed:
                failures.append(f"{ds}: best {key} {best[key]:.4f} < {need}")
            print(f"\n{ds}: best {key} {best[key]:.4f} (floor {need}{test})")
    print("\n" + ("all rows meet their floors" if not failures else "below floor: " + ", ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
