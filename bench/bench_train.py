"""Training throughput of the trainer's batching vs a naive loop, on tokenized Reuters.

trainer: length-bucketed batches padded to their longest document + autocast at `precision: auto`
(bf16 on CPUs with AVX512-BF16/AMX). naive: random batches padded to a fixed 512 tokens, fp32.
Both run the same model, optimizer and number of steps (after one warm-up step each); prints
samples/s and the ratio. Needs `textbench tokenize -d reuters` (TEXTBENCH_ROOT or cwd).

    .venv/bin/python bench/bench_train.py --steps 6 --threads 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from pipeline import paths
from pipeline.artifacts import TokenizedMeta
from pipeline.config import TrainConfig
from pipeline.device import autocast, pick_precision
from pipeline.models.registry import BuildContext, build_model, entry
from pipeline.train.data import epoch_batches, read_split
from pipeline.train.loop import make_optimizer

NAIVE_LEN = 512


def samples_per_s(name: str, batch: int, steps: int, naive: bool) -> float:
    tok = paths.tokenized_dir("reuters", entry(name).scheme)
    meta = TokenizedMeta.of(tok).as_dict()
    split = read_split(tok, "train", len(meta["labels"]))
    torch.manual_seed(0)
    ctx = BuildContext(
        num_labels=len(meta["labels"]),
        vocab_size=meta["vocab_size"],
        pad_id=meta["pad_id"],
        max_len=NAIVE_LEN,
        encoder=meta.get("encoder"),
    )
    model, _ = build_model(name, ctx, {"embed_dim": 128, "num_filters": 128} if name == "textcnn" else {})
    opt = make_optimizer(model, TrainConfig())
    device = torch.device("cpu")
    precision = "fp32" if naive else pick_precision("auto", device)
    if naive:
        rows = np.random.default_rng(0).permutation(len(split))
        batches = [rows[i : i + batch] for i in range(0, len(rows), batch)]
    else:
        batches = epoch_batches(split, batch, seed=0, epoch=0)
    model.train()
    elapsed, n = 0.0, 0
    for i, b in enumerate(batches[: steps + 1]):
        t0 = time.perf_counter()
        ids, mask = split.collate(b, meta["pad_id"])
        if naive:  # pad every batch to the fixed length
            ids = F.pad(ids, (0, NAIVE_LEN - ids.size(1)), value=meta["pad_id"])
            mask = F.pad(mask, (0, NAIVE_LEN - mask.size(1)))
        with autocast(device, precision):
            loss = F.cross_entropy(model(ids, mask).float(), torch.from_numpy(split.labels[b]))
        loss.backward()
        opt.step()
        opt.zero_grad()
        if i:  # the first step is warm-up
            elapsed += time.perf_counter() - t0
            n += len(b)
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5, help="timed steps per variant")
    ap.add_argument("--models", nargs="+", default=["textcnn", "bert"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default (all cores)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()} precision(auto)={pick_precision('auto', torch.device('cpu'))}")
    for name in args.models:
        batch = 64 if name == "textcnn" else 16
        naive = samples_per_s(name, batch, args.steps, naive=True)
        ours = samples_per_s(name, batch, args.steps, naive=False)
        print(
            f"{name:8s} batch {batch}: naive {naive:8.1f} samples/s  trainer {ours:8.1f} samples/s  "
            f"ratio {ours / naive:5.2f}x"
        )


if __name__ == "__main__":
    main()
