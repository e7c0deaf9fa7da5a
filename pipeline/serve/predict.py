"""Batch prediction over a file or stdin, streamed chunk by chunk with bounded memory.

Output = every input row, in input order, plus `label`, `confidence`, `top1_label`, `top1_prob`,
... `topK_label`, `topK_prob` and `needs_review` (confidence below --min-confidence). Input columns
with one of those names are kept, renamed `input_<name>`. A row with nothing to classify (missing, or
no token the model knows: `EncodedBatch.classifiable`, the rule the API's 422 applies) gets no label:
null prediction columns and `needs_review` true.

A multi-label model adds `labels`: every label whose probability reaches its threshold, most probable
first, joined by "|" (one text column in every output format; empty when none reaches it, which also
sets `needs_review`); `label`/`confidence` stay the most probable label and its probability.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from pipeline.errors import TextbenchError
from pipeline.serve.predictor import Predictor
from pipeline.serve.tables import count_rows, open_writer, read_chunks


def default_output(input_path: str) -> str:
    """`-` → stdout; `x/data.csv` → `x/data.predictions.csv`."""
    if input_path == "-":
        return "-"
    p = Path(input_path)
    return str(p.with_name(f"{p.stem}.predictions{p.suffix}"))


def writable(output: str) -> None:
    """Refuse, before any prediction, an `output` that could not be written at the end: a directory, or
    one whose nearest existing ancestor (missing folders are created) is a file or not writable."""
    if output == "-":
        return
    path = Path(output)
    if path.is_dir():
        raise TextbenchError(f"{output}: is a directory; pass a file name with -o")
    ancestor = next(a for a in path.absolute().parents if a.exists())
    if not ancestor.is_dir():
        raise TextbenchError(f"{output}: {ancestor} is a file, not a directory; pass another -o")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise TextbenchError(f"{output}: cannot write in {ancestor} (permission denied); pass another -o")


def predict_file(
    predictor: Predictor,
    input_path: str,
    output: str | None = None,
    text_column: str = "text",
    top_k: int = 3,
    min_confidence: float = 0.0,
    chunk_rows: int = 4096,
) -> tuple[str, int]:
    """Predict every row of `input_path` into `output`; returns (output path, rows written).

    Rows are read `chunk_rows` at a time (the window sorted by length for batching), scored, and
    appended to a temporary file that is renamed onto `output` at the end.
    """
    if top_k < 1:
        raise TextbenchError(f"--top-k must be at least 1, got {top_k}")
    if not 0.0 <= min_confidence <= 1.0:
        raise TextbenchError(f"--min-confidence must be within [0, 1], got {min_confidence}")
    output = output or default_output(input_path)
    if output != "-" and input_path != "-" and Path(output).resolve() == Path(input_path).resolve():
        raise TextbenchError(f"{output}: output would overwrite the input; pass another -o")
    writable(output)
    k = min(top_k, len(predictor.labels))
    total = count_rows(input_path)
    written = 0
    with (
        open_writer(output) as writer,
        tqdm(total=total, unit="rows", desc="predict", file=sys.stderr, disable=None) as bar,
    ):
        for chunk in read_chunks(input_path, chunk_rows, text_column):
            column = chunk.column(text_column)
            if not (
                pa.types.is_string(column.type)
                or pa.types.is_large_string(column.type)
                or pa.types.is_null(column.type)
            ):
                raise TextbenchError(
                    f"{input_path}: column '{text_column}' holds {column.type} values, not text; "
                    "pass --text-column NAME"
                )
            texts = column.to_pylist()
            ids, known = predictor.encode_known(texts)
            probs = np.zeros((len(texts), len(predictor.labels)), dtype=np.float32)
            probs[known] = predictor.proba_from_ids([x for x, ok in zip(ids, known) if ok])
            sets = (
                [predictor.above_threshold(p) if ok else [] for p, ok in zip(probs, known)] if predictor.multi else None
            )
            writer.write(with_predictions(chunk, probs, known, predictor.labels, k, min_confidence, sets))
            written += chunk.num_rows
            bar.update(chunk.num_rows)
    return output, written


def with_predictions(
    chunk: pa.Table,
    probs: np.ndarray,
    known: np.ndarray,
    labels: list[str],
    k: int,
    min_confidence: float,
    sets: list[list[str]] | None = None,
) -> pa.Table:
    """`chunk` plus the prediction columns (colliding input columns renamed `input_<name>`); rows not
    `known` (no text) get nulls and needs_review. `sets` (multi-label) adds the `labels` column."""
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    rows = np.arange(len(probs))
    labels_arr = np.asarray(labels, dtype=object)
    confidence = probs[rows, top[:, 0]]
    cols: dict[str, pa.Array] = {
        "label": pa.array(labels_arr[top[:, 0]].tolist(), pa.string(), mask=~known),
        "confidence": pa.array(confidence, pa.float32(), mask=~known),
    }
    for j in range(k):
        cols[f"top{j + 1}_label"] = pa.array(labels_arr[top[:, j]].tolist(), pa.string(), mask=~known)
        cols[f"top{j + 1}_prob"] = pa.array(probs[rows, top[:, j]], pa.float32(), mask=~known)
    review = ~known | (confidence < min_confidence)
    if sets is not None:
        cols["labels"] = pa.array(["|".join(s) for s in sets], pa.string(), mask=~known)
        review |= np.array([not s for s in sets], dtype=bool)
    cols["needs_review"] = pa.array(review, pa.bool_())
    names = [f"input_{n}" if n in cols else n for n in chunk.column_names]
    table = chunk.rename_columns(names)
    for name, values in cols.items():
        table = table.append_column(name, values)
    return table
