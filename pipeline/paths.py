"""Every file location of the project, in one place. Paths are relative to the project root.

    data/raw/<ds>/<archive>                     downloaded archives (one folder per dataset)
    data/prepared/<ds>/{train,dev,test}.parquet + card.json
    data/tokenized/<ds>/<scheme>/{train,dev,test}.parquet + meta.json (+ vocab.json)
    data/audit/<ds>/audit.json                  duplicates, near-duplicates, suspected label errors (audit)
    data/features/<ds>/<key>/{train,dev,test}.npy   frozen-encoder token states (a cache, not a DVC output)
    models/<ds>/<model>/                        what predict/serve/export load: config, best weights, tokenizer
    .textbench/state/<model dir>.partial/       a trainer's resumable state, removed when its run finishes
    .textbench/state/<model dir>.lock           held by the trainer writing that model dir (and its report dir)
    reports/<ds>/<model>/                       metrics.json, predictions.parquet, curves
    models|reports/<ds>/<model>/seeds/<seed>/   the benchmark's extra seeds (seed_dir)
    models/<ds>/<model>/export/                 `textbench export`'s files + source.json (the weights they came from)
    reports/<ds>/.status/<model>/<seed>.json    the flow's record of each job (apart from the dirs the trainer swaps)
    reports/{metrics.json,cost.json,comparison.md,index.html}   scores apart from cost (timings, memory)
    reports/{outcomes.json,environment.json}    test predictions and where each run ran (for `textbench diff`)
    reports/learning/<ds>/points.json           learning curves: test predictions per model and train share

Names from params (dataset keys, archive file names) and code (model names, seeds) become path
components, so every builder below passes them through one check (`_under`): a name that is not
plain (`plain_name_problem`) is refused, and no builder can hand out a path outside its base.

The stages hand over through these, named alike in code and docs: the *prepared data*, the
*tokenized data* (one per scheme), a *model dir* and its *report dir* (one per dataset × model × seed)
and the flow's *job status*. Their JSON files are typed in pipeline/artifacts.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pipeline.errors import TextbenchError

SPLITS = ("train", "dev", "test")


def split_file(data_dir: Path, split: str) -> Path:
    """`<prepared or tokenized data dir>/<split>.parquet`: one split of the prepared or tokenized data."""
    return _under(data_dir, f"{split}.parquet")


PLAIN_NAME = "letters, digits, '_', '-' and '.' only, and not '.' or '..'"
_PLAIN = re.compile(r"[\w.-]+")


def plain_name_problem(name: str) -> str | None:
    """Why `name` cannot be one path component (a separator, `..`, NUL, empty, ...), or None if it can.
    Config checks every params name with it at load; `_under` checks it again for every path handed out."""
    if not _PLAIN.fullmatch(name) or name in (".", ".."):
        return f"{name!r} is not a plain name ({PLAIN_NAME})"
    return None


def _under(base: Path, *names: str | int) -> Path:
    """`base/<name>/...`, each name checked: the one way a builder turns names into a path, so a name
    can never point above `base` (`../x`, `a/../../b`, an absolute path, a backslash or NUL)."""
    for name in map(str, names):
        if problem := plain_name_problem(name):
            raise TextbenchError(f"refusing a path under {base}: {problem}")
    return base.joinpath(*map(str, names))


def root() -> Path:
    """Project root: $TEXTBENCH_ROOT, else the current directory."""
    return Path(os.environ.get("TEXTBENCH_ROOT", ".")).resolve()


def project_path(path: str) -> Path:
    """A user-given path (params.yaml, CLI); relative paths are relative to the project root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else root() / p


def inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """`path`, checked before writing there: it lies under `root` and no entry from `root` down to it
    is a symbolic link (a link in a model dir shared or unpacked from elsewhere would aim the write at
    another directory). Otherwise one TextbenchError naming the path."""
    base, target = Path(os.path.abspath(root)), Path(os.path.abspath(path))
    if not target.is_relative_to(base):
        raise TextbenchError(f"{path}: outside {root}; textbench writes only under it")
    for depth in range(len(base.parts) + 1, len(target.parts) + 1):
        entry = Path(*target.parts[:depth])
        if entry.is_symlink():
            raise TextbenchError(
                f"{entry}: a symbolic link (to {os.readlink(entry)}); textbench writes only inside {root}, "
                "never through a link: remove it (or replace it with a directory of its own)"
            )
    return Path(path)


def raw_dir() -> Path:
    return root() / "data" / "raw"


def raw_file(dataset: str, filename: str) -> Path:
    """data/raw/<ds>/<filename>: a dataset's downloaded archive, or the receipt of a local corpus."""
    return _under(raw_dir(), dataset, filename)


def prepared_dir(dataset: str) -> Path:
    return _under(root() / "data" / "prepared", dataset)


def audit_dir(dataset: str) -> Path:
    """The data audit of a prepared dataset (pipeline/audit.py), the DVC stage's output."""
    return _under(root() / "data" / "audit", dataset)


def audit_json(dataset: str) -> Path:
    """data/audit/<ds>/audit.json: the audit's findings (artifacts.DataAudit)."""
    return audit_dir(dataset) / "audit.json"


def tokenized_dir(dataset: str, scheme: str) -> Path:
    return _under(root() / "data" / "tokenized", dataset, scheme)


def features_dir(dataset: str) -> Path:
    """Cached frozen-encoder token states (pipeline/train/features.py): one encoding per dataset."""
    return _under(root() / "data" / "features", dataset)


def model_dir(dataset: str, model: str) -> Path:
    return _under(root() / "models", dataset, model)


def state_dir() -> Path:
    """Trainers' working state (resume checkpoints, job locks): not a DVC output, ignored by git."""
    return root() / ".textbench" / "state"


def _state_of(model_dir: Path, suffix: str) -> Path:
    """`model_dir`'s path under state_dir() + `suffix`: one name per model dir, never inside another's
    (an extra seed's models/<ds>/<model>/seeds/<seed> maps beside, not into, its first seed's)."""
    d = Path(model_dir).resolve()
    rel = d.relative_to(root()) if d.is_relative_to(root()) else Path("abs", *d.parts[1:])
    return state_dir() / rel.parent / f"{rel.name}{suffix}"


def job_lock(model_dir: Path) -> Path:
    """The lock file a trainer holds while it writes `model_dir` and its report dir (never deleted,
    so every trainer of the dir locks the same file)."""
    return _state_of(model_dir, ".lock")


def partial_dir(model_dir: Path) -> Path:
    """Where a trainer keeps the resumable `last/` state of `model_dir` until the run finishes."""
    return _state_of(model_dir, ".partial")


def report_dir(dataset: str, model: str) -> Path:
    return _under(root() / "reports", dataset, model)


SEEDS = "seeds"  # models|reports/<ds>/<model>/seeds/<seed>/: the benchmark's extra seeds

# The files and directories inside the stages' dirs: named here only (tests/test_one_place.py).
CARD = "card.json"  # prepared data: classes, counts, what preparation removed (artifacts.DatasetCard)
META = "meta.json"  # tokenized data and a model's tokenizer/: how text became ids (artifacts.TokenizedMeta)
CONFIG = "config.json"  # model dir: what rebuilds the model (artifacts.ModelConfig)
TOKENIZER = "tokenizer"  # model dir: the tokenizer files and meta.json copied from the tokenized data
METRICS = "metrics.json"  # report dir: one run's test scores (artifacts.RunMetrics); reports/: every run's
PREDICTIONS = "predictions.parquet"  # report dir: one run's test predictions
CURVES_CSV = "curves.csv"  # report dir: the dev curves of one run
FIGURES = "figures"  # reports/figures/<ds>/: the report's PNGs
CURVES = "curves"  # reports/curves/<ds>/<model>.csv: every run's curves, for `dvc plots show`
RECEIPT = "source.json"  # data/raw/<ds>/: what a local corpus was read from (download.py)
VOCAB = "vocab.json"  # tokenized data (scheme vocab) and a model's tokenizer/: the id → token list


def seed_dir(run_dir: Path, seed: int) -> Path:
    """Where an extra seed of the model or report dir `run_dir` lives. A retrain of the first seed
    (`textbench train`, whose dirs are swapped in whole) carries `seeds/` over."""
    return _under(run_dir / SEEDS, seed)


EXPORT = "export"  # models/<ds>/<model>/export/: what `textbench export` writes (kept by a retrain)
EXPORT_SOURCE = "source.json"  # export/: the sha256 of the model.safetensors the export was built from
KEPT_BY_RETRAIN = (SEEDS, EXPORT)  # what a retrain's swap of the model dir carries over from the old one
WEIGHTS = "model.safetensors"  # a model dir's best weights
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}  # export/: the fast variants by --variant
ONNX_SKIPPED = "onnx-skipped.txt"  # export/: why `textbench export --onnx` could not write model.onnx


def export_dir(model_dir: Path) -> Path:
    """`textbench export`'s output dir of `model_dir`. A retrain keeps it, and every reader first checks
    (artifacts.ExportSource) that it was built from the model dir's current weights."""
    return Path(model_dir) / EXPORT


def report_dir_of(model_dir: Path) -> Path:
    """The report dir beside a model dir wherever the models root lies (`textbench serve --models-root`):
    <root>/models/<ds>/<model> → <root>/reports/<ds>/<model>."""
    d = Path(model_dir)
    return _under(d.parents[2] / "reports", d.parent.name, d.name)


def job_status(dataset: str, model: str, seed: int) -> Path:
    """The flow's status.json of one job. Only the flow writes it, and it lies apart from the model
    and report dirs, which the trainer replaces whole (a hand-run retrain keeps it)."""
    return _under(root() / "reports", dataset, ".status", model, f"{seed}.json")


def reports_root() -> Path:
    return root() / "reports"


LEARNING = "learning"  # reports/learning/<ds>/: the curves stage's output (a name no dataset may take)
LEARNING_CURVES = "learning_curves"  # reports/learning_curves/<ds>/<model>.csv: the report's copy for `dvc plots`
# reports/ subdirectories that are not a dataset's: no dataset key may take these names
REPORTS_OWN = (FIGURES, CURVES, LEARNING, LEARNING_CURVES)


def learning_points(dataset: str) -> Path:
    """reports/learning/<ds>/points.json: each (model, train share) fit's size and test predictions."""
    return _under(reports_root() / LEARNING, dataset, "points.json")


def learning_partial(dataset: str, model: str) -> Path:
    """A learning-curve fit's resumable state while it trains (removed after each fit)."""
    return _under(state_dir() / LEARNING, dataset, f"{model}.partial")


def metrics_json() -> Path:
    """The scores and their CIs per dataset and model: what `dvc metrics diff` and the PR comment show."""
    return reports_root() / METRICS


def cost_json() -> Path:
    """Every run's parameters, timings, throughput and memory: apart from reports/metrics.json's scores,
    which identical runs reproduce exactly."""
    return reports_root() / "cost.json"


def outcomes_json() -> Path:
    """Every run's test predictions, compact and committed: what `textbench diff` tests two commits' runs on."""
    return reports_root() / "outcomes.json"


def environment_json() -> Path:
    """Where each run of the report ran (hardware, precision, versions, threads)."""
    return reports_root() / "environment.json"


def comparison_md() -> Path:
    """The report as Markdown (what the flow's artifact and the PR comment show)."""
    return reports_root() / "comparison.md"


def index_html() -> Path:
    """The report as one HTML page (figures inlined from reports/figures/)."""
    return reports_root() / "index.html"
