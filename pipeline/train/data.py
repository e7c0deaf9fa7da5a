"""Tokenized splits → length-bucketed, dynamically padded batches.

Batch order is a pure function of (seed, epoch): each epoch shuffles the documents, sorts
windows of `batch_size * BUCKET` documents by length, cuts them into batches and shuffles the
batches. So similar lengths share a batch (little padding) and a resumed run sees exactly the
batches the interrupted one would have seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow.parquet as pq
import torch

from pipeline.errors import TextbenchError
from pipeline.paths import SPLITS

BUCKET = 50  # batches per length-sorting window


@dataclass
class Split:
    ids: list[str]
    input_ids: list[np.ndarray]
    labels: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: np.ndarray) -> "Split":
        return Split([self.ids[i] for i in rows], [self.input_ids[i] for i in rows], self.labels[rows])


def read_meta(tok_dir: Path) -> dict[str, Any]:
    path = tok_dir / "meta.json"
    if not path.is_file():
        raise TextbenchError(f"{path}: not found; run `textbench tokenize -d <dataset>` first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise TextbenchError(f"{path}: not valid JSON ({e}); rerun `textbench tokenize`") from None


def read_split(tok_dir: Path, split: str, num_labels: int) -> Split:
    """One tokenized split, checked against the contract (columns, label range, non-empty)."""
    path = tok_dir / f"{split}.parquet"
    if not path.is_file():
        raise TextbenchError(f"{path}: not found; run `textbench tokenize` first")
    try:
        table = pq.read_table(path, columns=["id", "input_ids", "label"])
    except Exception as e:  # pyarrow raises several types for corrupt files / missing columns
        raise TextbenchError(f"{path}: unreadable or missing id/input_ids/label ({type(e).__name__}: {e}); "
                             f"rerun `textbench tokenize`") from None
    labels = table.column("label").to_numpy().astype(np.int64)
    if len(labels) == 0:
        raise TextbenchError(f"{path}: no rows; check the dataset's split settings in params.yaml")
    if labels.min() < 0 or labels.max() >= num_labels:
        raise TextbenchError(f"{path}: label ids outside 0..{num_labels - 1} of meta.json labels; rerun tokenize")
    seqs = [np.asarray(s, dtype=np.int64) for s in table.column("input_ids").to_pylist()]
    return Split([str(i) for i in table.column("id").to_pylist()], seqs, labels)


def read_splits(tok_dir: Path, num_labels: int) -> dict[str, Split]:
    return {s: read_split(tok_dir, s, num_labels) for s in SPLITS}


def collate(seqs: list[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the longest sequence of the batch (at least 1 token); returns ids and attention mask."""
    width = max(1, max(len(s) for s in seqs))
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
        mask[i, : max(len(s), 1)] = 1  # an empty document still has one (pad) position to read
    return torch.from_numpy(ids), torch.from_numpy(mask)


def epoch_batches(split: Split, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Row indices of each batch of `epoch`, length-bucketed and shuffled from (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(split))
    lengths = np.array([len(s) for s in split.input_ids])
    window = batch_size * BUCKET
    batches: list[np.ndarray] = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def eval_batches(split: Split, batch_size: int) -> Iterator[np.ndarray]:
    """Length-sorted batches for inference (order does not matter, padding does)."""
    order = np.argsort([len(s) for s in split.input_ids], kind="stable")
    for i in range(0, len(order), batch_size):
        yield order[i : i + batch_size]
