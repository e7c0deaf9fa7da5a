"""Frozen-encoder features: the encoder's token states for every split, computed once and cached.

A BERT-family model with `freeze_encoder: true` never changes its encoder, so running the encoder
at every step of every epoch of every head repeats the same work. Instead its last hidden states
are computed once per (tokenized data, encoder weights, precision) and kept under
`paths.features_dir(<ds>)/<key>/` as `<split>.npy` (float16 [n_tokens, hidden], rows aligned with
the tokenized split's offsets); all seven heads and all epochs then train on them (the "BERT
features" protocol). The first job that needs them computes them under a file lock; other jobs
wait and reuse them. A new key replaces the dataset's older ones, so the cache holds one encoding.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pipeline import paths
from pipeline.artifacts import TokenizedMeta
from pipeline.config import Config
from pipeline.device import autocast, pick_device, pick_precision
from pipeline.errors import TextbenchError
from pipeline.families import SCHEME_OF_MODEL
from pipeline.io import atomic_dir, fingerprint, locked, write_json
from pipeline.train.data import Split, eval_batches, read_splits

BATCH = 64  # documents per encoder pass on short texts (length-sorted, so little padding)
PASS_TOKENS = (
    4096  # long documents: about this many tokens per pass (at 256 tokens, 16 a pass ran 1.3-1.75x faster than 64)
)
VERSION = 1  # bump when the stored layout changes


def features_key(data_fingerprint: str, encoder: torch.nn.Module, precision: str) -> str:
    """What the cached states depend on: the tokenized data, the encoder's weights and the precision."""
    h = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        if name.startswith("pooler."):  # not part of the token states (and randomly made when a checkpoint lacks it)
            continue
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return fingerprint("features", VERSION, data_fingerprint, h.hexdigest(), precision)


def pass_batch(split: Split) -> int:
    """Documents per encoder pass: BATCH, fewer when the mean document is longer than PASS_TOKENS / BATCH
    (64 tokens), so 48-token corpora keep BATCH and 256-token reviews take 16."""
    mean = float(split.lengths.mean()) if len(split) else 1.0
    return int(min(BATCH, max(1, PASS_TOKENS // max(1.0, mean))))


@torch.no_grad()
def _encode(
    encoder: torch.nn.Module,
    split: Split,
    out: np.ndarray,
    device: torch.device,
    precision: str,
    desc: str,
    batch: int,
) -> None:
    encoder.eval()
    for rows in tqdm(list(eval_batches(split, batch)), desc=desc, unit="batch", leave=False):
        ids, mask = split.collate(rows, pad_id=0)
        with autocast(device, precision):
            states = encoder(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        real, src = split.layout(rows)
        out[src] = states.float().cpu().numpy()[real]


def encoder_features(
    dataset: str,
    splits: dict[str, Split],
    data_fingerprint: str,
    encoder: torch.nn.Module,
    device: torch.device,
    precision: str,
) -> tuple[dict[str, Split], str]:
    """`splits` with token ids replaced by the encoder's cached token states; computes them if absent.

    Returns the feature splits and the cache key (recorded in metrics.json)."""
    key = features_key(data_fingerprint, encoder, precision)
    base = paths.features_dir(dataset)
    target = base / key
    with locked(base / ".lock"):
        if not (target / "done.json").is_file():
            with atomic_dir(target) as tmp:
                hidden = int(encoder.config.hidden_size)
                for name, split in splits.items():
                    out = np.lib.format.open_memmap(
                        tmp / f"{name}.npy", mode="w+", dtype=np.float16, shape=(int(split.offsets[-1]), hidden)
                    )
                    desc = f"{dataset} encoder features {name}"
                    _encode(encoder, split, out, device, precision, desc, pass_batch(split))
                    out.flush()
                    del out
                write_json(tmp / "done.json", {"key": key, "docs": {n: len(s) for n, s in splits.items()}})
            for stale in base.iterdir():  # one encoding per dataset: drop older keys
                if stale.is_dir() and stale.name != key:
                    shutil.rmtree(stale, ignore_errors=True)
    out_splits = {}
    for name, split in splits.items():
        values = np.load(target / f"{name}.npy", mmap_mode="r")
        if values.shape[0] != split.offsets[-1]:
            raise TextbenchError(
                f"{target / (name + '.npy')}: {values.shape[0]} token states for "
                f"{split.offsets[-1]} tokens; delete {target} to recompute it"
            )
        out_splits[name] = Split(split.ids, values, split.offsets, split.labels)
    return out_splits, key


def build_features(cfg: Config, dataset: str) -> Path:
    """The `textbench features` stage: cache the frozen encoder's states for `dataset` ahead of the
    BERT-family trainings (the flow runs it once, before them), with the family's device and precision."""
    from pipeline.models.bert import load_encoder_model

    tok_dir = paths.tokenized_dir(dataset, "subword")
    meta = TokenizedMeta.of(tok_dir)
    tc = cfg.train_for(next(name for name, scheme in SCHEME_OF_MODEL.items() if scheme == "subword"))
    device = pick_device(tc.device, tc.threads)
    encoder = load_encoder_model(meta.encoder, None).to(device)
    _, key = encoder_features(
        dataset,
        read_splits(tok_dir, len(meta.labels)),
        meta.fingerprint,
        encoder,
        device,
        pick_precision(tc.precision, device),
    )
    return paths.features_dir(dataset) / key
