"""Is the default run's table a result? Checks every row of the last run against the issue-9 floors.

    .venv/bin/python bench/check_default.py [--params params.yaml]

Reads reports/<ds>/<model>/{metrics,status}.json of `benchmark.datasets × benchmark.models` (what
`make repro` / `dvc repro` wrote) and prints, per row: accuracy, macro-F1, how training stopped,
wall and train seconds, the time outside training, and the floor it must reach. BERT-family rows
whose encoder does not cover the language pass when they are flagged not comparable. Exits 1 when
a row misses its floor, has no result, or the best macro-F1 of a dataset misses its floor.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from pipeline import paths
from pipeline.artifacts import Artifact, RunMetrics, RunStatus
from pipeline.config import load_config
from pipeline.errors import TextbenchError
from pipeline.families import FAMILY, SCHEMES

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
    print("| dataset | model | accuracy | macro-F1 | training | wall s | train s | outside s | floor | ok |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---|")
    for ds in cfg.benchmark.datasets:
        best = {"accuracy": 0.0, "macro_f1": 0.0}
        for model in cfg.benchmark.models:
            rdir = paths.report_dir(ds, model)
            m = read(RunMetrics.of, rdir)
            st = read(RunStatus.of, ds, model, cfg.benchmark.seeds[0])
            need = floor(ds, model)
            skipped = st.get("status") == "not_comparable"
            flagged = skipped or bool(m.get("not_comparable"))
            acc = m.get("accuracy") if not skipped else None
            if flagged:
                ok = SCHEMES[model] == "subword"  # only the BERT family may be excused for its encoder
            else:
                ok = acc is not None and (need is None or acc >= need)
            if acc is not None and not flagged:
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
                "yes" if ok else "**NO**",
            ]
            print("| " + " | ".join(cells) + " |")
            if not ok:
                failures.append(f"{ds}/{model}")
        for key, need in BEST.get(ds, {}).items():
            if best[key] < need:
                failures.append(f"{ds}: best {key} {best[key]:.4f} < {need}")
            print(f"\n{ds}: best {key} {best[key]:.4f} (floor {need})")
    print("\n" + ("all rows meet their floors" if not failures else "below floor: " + ", ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
