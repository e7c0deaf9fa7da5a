"""`textbench`: one thin subcommand per stage; each parses arguments and calls the library.

Every failure the user can fix arrives as a TextbenchError and is printed as one
`error: ...` line with exit status 2; nothing half-written is left behind by the stages.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

from pipeline.config import Config, load_config
from pipeline.errors import TextbenchError

app = typer.Typer(
    help="Benchmark text classifiers (BERT family vs TextCNN/TextRNN/FastText/DPCNN/Transformer/RNN) "
    "reproducibly. Stages: download → prepare → tokenize → train → report; `run` does it all via Prefect.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ParamsOpt = typer.Option(Path("params.yaml"), "--params", "-p", help="params file (the one file users edit)")
DatasetOpt = typer.Option(..., "--dataset", "-d", help="dataset key under `datasets:` in params.yaml")


def config(params: Path) -> Config:
    return load_config(params)


def main() -> None:
    """Console-script entry point: run the app, turning TextbenchError into one line and exit 2."""
    try:
        app()
    except TextbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: outputs of the unfinished stage were not written; rerun to resume", file=sys.stderr)
        sys.exit(130)


# --- stage commands (each a thin call into pipeline.<module>) ---------------------------------


@app.command()
def download(dataset: str = DatasetOpt, params: Path = ParamsOpt) -> None:
    """Fetch the dataset's archive into data/raw/<dataset>/ (mirror first, resumable, sha256-checked)."""
    from pipeline.data import download as run

    print(run(config(params), dataset))


@app.command()
def prepare(dataset: str = DatasetOpt, params: Path = ParamsOpt) -> None:
    """Parse, clean, split and de-duplicate into data/prepared/<dataset>/{train,dev,test}.parquet + card.json."""
    from pipeline.data import prepare as run

    print(run(config(params), dataset))


class Scheme(str, Enum):
    subword = "subword"
    vocab = "vocab"


@app.command()
def tokenize(
    dataset: str = DatasetOpt,
    scheme: list[Scheme] = typer.Option(
        [], "--scheme", "-s", help="subword (the encoder's WordPiece, BERT family) or vocab (word/char ids); "
        "repeat for both; default both"),
    params: Path = ParamsOpt,
) -> None:
    """Token ids into data/tokenized/<dataset>/<scheme>/{train,dev,test}.parquet + meta.json (+ vocab.json)."""
    from pipeline.tokenize.stage import tokenize_dataset

    schemes = tuple(s.value for s in scheme) or ("subword", "vocab")
    for path in tokenize_dataset(config(params), dataset, schemes):
        print(path)
