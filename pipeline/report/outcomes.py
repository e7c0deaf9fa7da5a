"""What `textbench diff` needs of a report, in git: every run's test predictions and where it ran.

reports/<ds>/ is not in git, so a pull request's base has only its committed files; these two
compact files (typed as `Outcomes` and `Environments` in pipeline/artifacts.py) let the diff test
base and head runs of one model on the same test documents, and say when they ran differently.
"""

from __future__ import annotations

import hashlib

from pipeline.artifacts import Environments, Outcomes, RunEnv, encode_classes
from pipeline.config import ReportConfig
from pipeline.report.aggregate import ModelResult

MULTI_SKIPPED = "multi-label: its predictions are not recorded, so `textbench diff` shows its score changes untested"


def ids_sha256(ids: list) -> str:
    """The hash of a test set's document ids, in id order."""
    return hashlib.sha256("\n".join(map(str, ids)).encode("utf-8")).hexdigest()


def outcomes(runs: dict[str, list[ModelResult]], cfg: ReportConfig, seed: int) -> Outcomes:
    """The comparable runs' predictions per dataset; a run scored on other test documents or gold labels
    than the dataset's first run is left out (the diff then says it has no predictions)."""
    datasets, skipped = {}, {}
    for ds, results in runs.items():
        ok = [r for r in results if r.comparable and r.predictions is not None]
        if any(r.multi for r in ok):
            skipped[ds] = MULTI_SKIPPED
            continue
        if not ok:
            continue
        first = ok[0]
        assert first.predictions is not None
        labels = first.metrics["labels"]
        ids = ids_sha256(first.predictions["id"].tolist())
        gold = encode_classes(first.predictions["y_true"].to_numpy(), len(labels))
        models = {}
        for r in ok:
            assert r.predictions is not None
            y_true, y_pred = r.predictions["y_true"].to_numpy(), r.predictions["y_pred"].to_numpy()
            ids_now = ids_sha256(r.predictions["id"].tolist())
            if r.metrics["labels"] == labels and ids_now == ids and encode_classes(y_true, len(labels)) == gold:
                models[r.model] = {
                    "fingerprint": r.metrics.get("fingerprint"),
                    "pred": encode_classes(y_pred, len(labels)),
                }
                if len(r.seed_metrics) > 1:  # the spread `textbench diff` weighs a change against
                    models[r.model]["seeds"] = {
                        str(seed): {k: float(m[k]) for k in ("accuracy", "macro_f1")}
                        for seed, m in r.seed_metrics.items()
                    }
        datasets[ds] = {
            "labels": labels,
            "n": len(first.predictions),
            "ids_sha256": ids,
            "gold": gold,
            "models": models,
        }
    return Outcomes.model_validate(
        {
            "confidence": cfg.confidence,
            "bootstrap": cfg.bootstrap,
            "seed": seed,
            "datasets": datasets,
            "skipped": skipped,
        }
    )


def environments(runs: dict[str, list[ModelResult]]) -> Environments:
    """The distinct environments of the ok runs that recorded one, and each run's index into them."""
    envs: list[RunEnv] = []
    index: dict[str, dict[str, int]] = {}
    for ds, results in runs.items():
        for r in results:
            if not r.ok or not r.metrics.get("env"):
                continue
            env = RunEnv.model_validate(r.metrics["env"])
            if env not in envs:
                envs.append(env)
            index.setdefault(ds, {})[r.model] = envs.index(env)
    return Environments(environments=envs, runs=index)


def environment_lines(envs: Environments, runs: int) -> list[str]:
    """The report header's lines: each environment and how many runs it ran, and runs without a record."""
    counts = [sum(i == k for ms in envs.runs.values() for i in ms.values()) for k in range(len(envs.environments))]
    lines = [f"Ran on {env.line()} (runs: {n})" for env, n in zip(envs.environments, counts, strict=True)]
    missing = runs - sum(counts)
    if missing:
        lines.append(f"Runs with no record of where they ran (trained before textbench recorded it): {missing}")
    return lines
