"""`textbench`: one thin subcommand per stage; each parses arguments and calls the library.

Every failure the user can fix arrives as a TextbenchError and is printed as one
`error: ...` line with exit status 2; nothing half-written is left behind by the stages.
"""

from __future__ import annotations

import errno
import shutil
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from tqdm import tqdm

from pipeline.config import Config, load_config
from pipeline.errors import Interrupted, TextbenchError
from pipeline.families import SCHEMES

app = typer.Typer(
    help="Benchmark text classifiers (BERT family vs TextCNN/TextRNN/FastText/DPCNN/Transformer/RNN vs TF-IDF + "
    "linear baselines; single- or multi-label) "
    "reproducibly. Stages: download → prepare → tokenize → benchmark (train every model via Prefect) → report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ParamsOpt = typer.Option(Path("params.yaml"), "--params", "-p", help="params file (the one file users edit)")
DatasetOpt = typer.Option(..., "--dataset", "-d", help="dataset key under `datasets:` in params.yaml")


def config(params: Path) -> Config:
    return load_config(params)


def main() -> None:
    """Console-script entry point: run the app, turning TextbenchError into one line and exit 2, and
    SIGINT/SIGTERM into an exception (cleanup runs) and one line with exit 130/143."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    try:
        app()
    except TextbenchError as e:
        tqdm.write(f"error: {e}", file=sys.stderr)  # on a line of its own, also below a progress bar
        sys.exit(2)
    except OSError as e:
        if (message := environment_fault(e)) is None:
            raise
        tqdm.write(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        print(
            f"stopped by {e.signame}: outputs of the unfinished stage were not written; rerun to resume",
            file=sys.stderr,
        )
        sys.exit(e.code)


def _interrupt(signum: int, _frame: Any) -> None:
    raise Interrupted(signum)


ENV_FAULTS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def environment_fault(e: OSError) -> str | None:
    """The one line for a fault of the machine rather than of textbench (full disk, read-only or forbidden
    directory), naming the path and, for a full disk, the space left; None for any other OSError. The
    stages write through pipeline.io's atomic_path/atomic_dir, so earlier outputs are still intact."""
    if e.errno not in ENV_FAULTS:
        return None
    path = Path(e.filename) if e.filename is not None else Path.cwd()
    what = ENV_FAULTS[e.errno]
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        where = next(p for p in (path, *path.absolute().parents) if p.exists())
        what += f" ({shutil.disk_usage(where).free / 2**20:,.0f} MiB free)"
    return f"{path}: {what}; textbench stopped there, and earlier outputs are unchanged"


# --- stage commands (each a thin call into pipeline.<module>) ---------------------------------


@app.command()
def download(dataset: str = DatasetOpt, params: Path = ParamsOpt) -> None:
    """Fetch the dataset's archive into data/raw/<dataset>/ (mirror first, resumable, sha256-checked)."""
    from pipeline.data.download import download as run

    print(run(config(params), dataset))


@app.command()
def prepare(dataset: str = DatasetOpt, params: Path = ParamsOpt) -> None:
    """Parse, clean, split and de-duplicate into data/prepared/<dataset>/{train,dev,test}.parquet + card.json."""
    from pipeline.data.prepare import prepare as run

    print(run(config(params), dataset))


@app.command()
def audit(dataset: str = DatasetOpt, params: Path = ParamsOpt) -> None:
    """Duplicates, near-duplicates (MinHash) and suspected label errors of the prepared data: data/audit/<dataset>/."""
    from pipeline.audit import audit as run

    print(run(config(params), dataset))


Scheme = Enum("Scheme", {s: s for s in SCHEMES}, type=str)  # the table's schemes, as CLI choices


@app.command()
def tokenize(
    dataset: str = DatasetOpt,
    scheme: list[Scheme] = typer.Option(
        [],
        "--scheme",
        "-s",
        help="subword (the encoder's WordPiece, BERT family) or vocab (word/char ids); repeat for both; default both",
    ),
    params: Path = ParamsOpt,
) -> None:
    """Token ids into data/tokenized/<dataset>/<scheme>/{train,dev,test}.parquet + meta.json (+ vocab.json)."""
    from pipeline.tokenize.stage import tokenize_dataset

    schemes = tuple(s.value for s in scheme) or SCHEMES
    for path in tokenize_dataset(config(params), dataset, schemes):
        print(path)


# --- using a trained model: predict, explain, export, serve (pipeline.serve) -------------------

ModelDirArg = typer.Argument(..., help="trained model directory, e.g. models/reuters/bert")
VariantOpt = typer.Option(
    "fp32",
    "--variant",
    help="runtime: fp32 | int8 (torch dynamic) | bf16 | onnx | "
    "onnx-int8 (the last two need `textbench export --onnx [--int8]` first)",
)


@app.command()
def predict(
    model_dir: Path = ModelDirArg,
    input: str = typer.Argument(
        ..., help="CSV/TSV/JSONL/Parquet file with a text column, or - for one text per stdin line"
    ),
    output: str = typer.Option(
        None,
        "--output",
        "-o",
        help="output file (format from its suffix) or - for JSONL "
        "on stdout; default <input>.predictions.<ext>, stdout for stdin input",
    ),
    text_column: str = typer.Option("text", "--text-column", help="column holding the text"),
    top_k: int = typer.Option(3, "--top-k", help="also write the k most likely classes and probabilities"),
    min_confidence: float = typer.Option(0.0, "--min-confidence", help="needs_review = confidence below this"),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="documents per forward pass"),
    variant: str = VariantOpt,
) -> None:
    """Classify every row of a file (streamed, bounded memory); rows keep their order and columns."""
    from pipeline.serve.predict import predict_file
    from pipeline.serve.predictor import Predictor

    predictor = Predictor.load(model_dir, variant=variant, batch_size=batch_size)
    out, rows = predict_file(predictor, input, output, text_column, top_k, min_confidence)
    if out != "-":
        print(f"{out}: {rows} rows", file=sys.stderr)


@app.command()
def explain(
    model_dir: Path = ModelDirArg,
    text: str = typer.Argument(..., help="the text to explain"),
    method: str = typer.Option(
        "ig",
        "--method",
        help="ig (integrated gradients on the input embeddings; linear baselines: their exact per-token share) or lime",
    ),
    target: str = typer.Option(None, "--target", help="class to explain; default the predicted one"),
) -> None:
    """Print the prediction and each token with its attribution score (> 0 supports the class)."""
    from pipeline.serve.explain import explain as run
    from pipeline.serve.predictor import Predictor

    e = run(Predictor.load(model_dir), text, method=method, target=target)
    print(f"{e.label}\t{e.confidence:.4f}\t({e.method})")
    for token, score in zip(e.tokens, e.scores):
        print(f"{score:+.5f}\t{token}")


@app.command()
def export(
    model_dir: Path = ModelDirArg,
    onnx: bool = typer.Option(False, "--onnx", help="write export/model.onnx (checked against torch)"),
    int8: bool = typer.Option(
        False, "--int8", help="measure torch dynamic int8; with --onnx also write model.int8.onnx"
    ),
    bf16: bool = typer.Option(False, "--bf16", help="measure bfloat16 weights (CPUs with AVX512-BF16/AMX)"),
    eval_file: Path = typer.Option(None, "--eval", help="Parquet to evaluate on (default: the tokenized test split)"),
    max_docs: int = typer.Option(1000, "--max-docs", help="evaluate on at most this many documents"),
) -> None:
    """Model card, transformers dir (BERT family; bert loads in pipeline()), ONNX, int8, bf16; prints accuracy and speed-up."""
    from pipeline.serve.export import export as run
    from pipeline.serve.export import format_report

    print(format_report(run(model_dir, onnx=onnx, int8=int8, bf16=bf16, eval_file=eval_file, max_docs=max_docs)))


@app.command()
def serve(
    models_root: Path = typer.Option(Path("models"), "--models-root", help="directory holding <ds>/<model>/ dirs"),
    host: str = typer.Option("127.0.0.1", "--host", help="interface to bind (0.0.0.0 exposes it to the network)"),
    port: int = typer.Option(8000, "--port", help="TCP port"),
    variant: str = VariantOpt,
    max_texts: int = typer.Option(256, "--max-texts", help="most texts per /predict request"),
    max_chars: int = typer.Option(20000, "--max-chars", help="most characters per text"),
) -> None:
    """HTTP API (/predict, /explain, /models, /healthz, /docs) and a web page at / for every trained model."""
    from pipeline.extras import require

    require("fastapi", "uvicorn")
    import uvicorn

    from pipeline.serve.api import Limits, create_app

    app_ = create_app(models_root, Limits(max_texts=max_texts, max_chars=max_chars), variant=variant)
    uvicorn.run(app_, host=host, port=port, log_level="info")


@app.command()
def train(
    dataset: str = DatasetOpt,
    model: str = typer.Option(..., "--model", "-m", help="registry name (textcnn, fasttext, bert, bert_cnn, ...)"),
    seed: int = typer.Option(None, "--seed", help="random seed; default params.yaml `seed`"),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="continue an interrupted run from its checkpoint (.textbench/state/models/<ds>/<model>.partial/last)",
    ),
    model_dir: Path = typer.Option(
        None,
        "--model-dir",
        help="write the model here instead of models/<ds>/<model>/ (the flow puts extra seeds in .../seeds/<seed>/)",
    ),
    report_dir: Path = typer.Option(
        None, "--report-dir", help="write metrics/predictions/curves here instead of reports/<ds>/<model>/"
    ),
    params: Path = ParamsOpt,
) -> None:
    """Train one model on one tokenized dataset; writes models/<ds>/<model>/ and reports/<ds>/<model>/."""
    from pipeline.artifacts import HEADLINE
    from pipeline.train.stage import train as run

    m = run(config(params), dataset, model, seed=seed, resume=resume, model_dir=model_dir, report_dir=report_dir)
    scores = "  ".join(f"{name} {m[k]:.4f}" for k, name in HEADLINE[m.get("label_mode", "single")].items())
    print(f"{dataset}/{model}: {scores}  ({m['train_time_s']:.0f}s train)")


@app.command()
def features(dataset: str = DatasetOpt, params: Path = ParamsOpt) -> None:
    """Cache the frozen encoder's token states of every split (data/features/<dataset>/): what the BERT-family
    heads with `freeze_encoder: true` train on. `textbench benchmark` does this once before them; any training
    that finds no cache makes it itself."""
    from pipeline.train.features import build_features

    print(build_features(config(params), dataset))


@app.command()
def curves(dataset: str = DatasetOpt, params: Path = ParamsOpt) -> None:
    """Learning curves: fit each `curves.models` model on stratified shares (`curves.fractions`) of the train
    split and record its test predictions (reports/learning/<dataset>/points.json); `textbench report` draws them."""
    from pipeline.curves import build_curves

    print(build_curves(config(params), dataset))


@app.command()
def report(params: Path = ParamsOpt) -> None:
    """Compare every run: reports/metrics.json (scores), cost.json, comparison.md, index.html and figures/."""
    from pipeline.report.build import build_report

    for path in build_report(config(params)):
        print(path)


# --- orchestration: the Prefect flow, profiles, scheduled reruns, PR diffs ---------------------


class Runner(str, Enum):
    local = "local"
    dask = "dask"
    ray = "ray"


@app.command()
def benchmark(
    params: Path = ParamsOpt,
    dataset: list[str] = typer.Option(
        [], "--dataset", "-d", help="only this dataset of benchmark.datasets (repeatable)"
    ),
    model: list[str] = typer.Option([], "--model", "-m", help="only this model of benchmark.models (repeatable)"),
    force: bool = typer.Option(False, "--force", help="retrain even when the fingerprint is unchanged"),
    runner: Runner = typer.Option(None, "--runner", help="override orchestration.task_runner (local, dask, ray)"),
    strict: bool = typer.Option(False, "--strict", help="exit 1 when any model failed (default: record and go on)"),
) -> None:
    """Train the whole benchmark with Prefect: one process per dataset × model × seed, unchanged ones skipped."""
    from flows.benchmark import run_benchmark

    results = run_benchmark(params, dataset or None, model or None, force, runner.value if runner else None)
    failed = [r for r in results if r["status"] == "failed"]
    for r in results:
        print(
            f"{r['job']}: {r['status']} ({r.get('wall_time_s', 0):.0f}s){'  ' + r['error'] if r.get('error') else ''}"
        )
    if failed:
        print(
            f"warning: {len(failed)} of {len(results)} trainings failed (see reports/<ds>/.status/<model>/<seed>.json); "
            f"fix and rerun `textbench benchmark` (only those retrain)",
            file=sys.stderr,
        )
        if strict:
            raise typer.Exit(1)


@app.command()
def profile(
    name: str = typer.Argument(None, help="profile to switch to: default, or the name of a profiles/<name>.yaml"),
    params: Path = ParamsOpt,
) -> None:
    """Switch params.yaml to a named profile (e.g. `paper`: the published settings); no NAME lists them."""
    from pipeline import profiles

    if name is None:
        now = profiles.current(params)
        for p in profiles.available(params):
            print(f"{'*' if p == now else ' '} {p}")
        return
    print(profiles.switch(params, name))


@app.command("params")
def params_(
    model: str = typer.Option(..., "--model", "-m", help="registry name (textcnn, fasttext, bert, bert_cnn, ...)"),
    dataset: str = typer.Option(None, "--dataset", "-d", help="also show this dataset's max_len and encoder"),
    params: Path = ParamsOpt,
) -> None:
    """Print a model's effective arch and train settings (defaults, train:, families, models merged) as YAML."""
    from pipeline.effective import effective_yaml

    print(effective_yaml(config(params), model, dataset), end="")


@app.command()
def schedule(
    cron: str = typer.Option(..., "--cron", help='cron schedule of the reruns, e.g. "0 3 * * *" (03:00 daily)'),
    command: str = typer.Option(
        "dvc repro",
        "--command",
        help='what each run executes in this project dir (e.g. "dvc exp run"); dvc.lock records it',
    ),
    name: str = typer.Option("nightly", "--name", help="deployment name shown in the Prefect UI"),
) -> None:
    """Register a scheduled rerun deployment on the Prefect server (PREFECT_API_URL) and serve it until Ctrl-C."""
    from flows.deploy import schedule as serve

    serve(Path.cwd(), cron, command, name)


@app.command()
def diff(
    base: str = typer.Option(..., "--base", help="git revision to compare against (e.g. main, origin/main)"),
    head: str = typer.Option(None, "--head", help="revision to compare (default: the workspace)"),
    out: Path = typer.Option(None, "--out", help="also write the markdown here (the PR comment body)"),
) -> None:
    """Markdown of the changed scores (cost changes collapsed) and params from BASE to HEAD (the PR comment)."""
    from pipeline.io import atomic_path
    from pipeline.metrics_diff import metrics_diff_markdown

    text = metrics_diff_markdown(base, head, Path.cwd())
    if out is not None:
        with atomic_path(out) as tmp:
            tmp.write_text(text, encoding="utf-8")
    print(text, end="")
