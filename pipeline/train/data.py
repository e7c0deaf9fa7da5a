"""Tokenized splits → length-bucketed, dynamically padded batches.

Batch order is a pure function of (seed, epoch): each epoch shuffles the documents, sorts
windows of `batch_size * BUCKET` documents by length, cuts them into batches and shuffles the
batches. So similar lengths share a batch (little padding) and a resumed run sees exactly the
batches the interrupted one would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from pipeline import paths
from pipeline.errors import TextbenchError
from pipeline.paths import SPLITS

BUCKET = 50  # batches per length-sorting window


@dataclass
class Split:
    """Documents as one flat array of token values with row offsets (no Python object per token).

    `values` is [n_tokens] token ids, or [n_tokens, hidden] encoder states (frozen-encoder features);
    document i is `values[offsets[i]:offsets[i + 1]]`.
    """

    ids: list[str]
    values: np.ndarray
    offsets: np.ndarray  # int64 [N + 1]
    labels: np.ndarray  # int64 [N] class ids, or float32 [N, C] multi-hot targets (multi-label)

    @property
    def multi(self) -> bool:
        return self.labels.ndim == 2

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_seqs(cls, seqs: list[np.ndarray], labels: np.ndarray | None = None, ids: list[str] | None = None) -> Split:
        offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum([len(q) for q in seqs], out=offsets[1:])
        values = np.concatenate([np.asarray(q, dtype=np.int64) for q in seqs]) if seqs else np.zeros(0, np.int64)
        return cls(
            ids if ids is not None else [str(i) for i in range(len(seqs))],
            values,
            offsets,
            labels if labels is not None else np.zeros(len(seqs), dtype=np.int64),
        )

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, rows: np.ndarray) -> Split:
        return Split([self.ids[i] for i in rows], *_gather(self, rows), self.labels[rows])

    def collate(self, rows: np.ndarray, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows padded to the batch's longest (at least 1 position) → (inputs, attention mask [B, T]).

        Token ids pad with `pad_id`; encoder states pad with zeros and come back as float32 [B, T, H].
        An empty document keeps one real (pad) position, so every head has something to read."""
        real, src = self.layout(rows)
        width = real.shape[1]
        if self.values.ndim == 1:
            out = np.full((len(rows), width), pad_id, dtype=np.int64)
        else:
            out = np.zeros((len(rows), width, self.values.shape[1]), dtype=np.float32)
        out[real] = self.values[src]
        mask = (np.arange(width)[None, :] < np.maximum(self.lengths[rows], 1)[:, None]).astype(np.int64)
        return torch.from_numpy(out), torch.from_numpy(mask)

    def layout(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where `rows` sit in a padded batch: `real` [B, T] (True on tokens, T = the longest, at least 1)
        and `src`, the flat value index of each True position in row-major order, so that
        `batch[real] = values[src]` pads and `values[src] = batch[real]` scatters back."""
        lengths = self.lengths[rows]
        pos = np.arange(max(1, int(lengths.max()) if len(rows) else 1))
        real = pos[None, :] < lengths[:, None]
        return real, (self.offsets[rows][:, None] + pos[None, :])[real]


def _gather(split: Split, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and offsets of `rows`, in that order."""
    lengths = split.lengths[rows]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    idx = (
        np.concatenate([np.arange(split.offsets[i], split.offsets[i + 1]) for i in rows])
        if len(rows)
        else np.zeros(0, np.int64)
    )
    return split.values[idx], offsets


def read_split(tok_dir: Path, split: str, num_labels: int, ids_column: str = "input_ids") -> Split:
    """One tokenized split, checked against the contract (columns, label range, non-empty); a `labels`
    list column (multi-label) becomes multi-hot float32 targets. `ids_column`: `bag_ids` for the
    bags of n-grams where the tokenized data has it."""
    path = paths.split_file(tok_dir, split)
    if not path.is_file():
        raise TextbenchError(f"{path}: not found; run `textbench tokenize` first")
    try:
        column = "labels" if "labels" in pq.ParquetFile(path).schema_arrow.names else "label"
        table = pq.read_table(path, columns=["id", ids_column, column])
    except Exception as e:  # pyarrow raises several types for corrupt files / missing columns
        raise TextbenchError(
            f"{path}: unreadable or missing id/{ids_column}/label ({type(e).__name__}: {e}); rerun `textbench tokenize`"
        ) from None
    if column == "labels":
        sets = table.column("labels").combine_chunks()
        ids = sets.flatten().to_numpy().astype(np.int64)
    else:
        ids = table.column("label").to_numpy().astype(np.int64)
    if table.num_rows == 0:
        raise TextbenchError(f"{path}: no rows; rerun `textbench prepare` and `textbench tokenize` for this dataset")
    if len(ids) and (ids.min() < 0 or ids.max() >= num_labels):
        raise TextbenchError(f"{path}: label ids outside 0..{num_labels - 1} of meta.json labels; rerun tokenize")
    labels = ids
    if column == "labels":
        labels = np.zeros((table.num_rows, num_labels), dtype=np.float32)
        labels[np.repeat(np.arange(table.num_rows), sets.value_lengths().to_numpy()), ids] = 1.0
    column = table.column(ids_column).combine_chunks()
    offsets = column.offsets.to_numpy().astype(np.int64)
    values = column.values.to_numpy().astype(np.int64)[offsets[0] : offsets[-1]]
    return Split([str(i) for i in table.column("id").to_pylist()], values, offsets - offsets[0], labels)


def read_splits(tok_dir: Path, num_labels: int, ids_column: str = "input_ids") -> dict[str, Split]:
    return {s: read_split(tok_dir, s, num_labels, ids_column) for s in SPLITS}


def collate(seqs: list[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a list of id sequences (see `Split.collate`)."""
    return Split.from_seqs(seqs).collate(np.arange(len(seqs)), pad_id)


def epoch_batches(split: Split, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Row indices of each batch of `epoch`, length-bucketed and shuffled from (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(split))
    lengths = split.lengths
    window = batch_size * BUCKET
    batches: list[np.ndarray] = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def eval_batches(split: Split, batch_size: int) -> Iterator[np.ndarray]:
    """Length-sorted batches for inference (order does not matter, padding does)."""
    order = np.argsort(split.lengths, kind="stable")
    for i in range(0, len(order), batch_size):
        yield order[i : i + batch_size]
