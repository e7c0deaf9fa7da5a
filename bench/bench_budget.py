"""Training throughput at long-document lengths: each model's params.yaml batch_size (the baseline) vs the
batch `train.batch_tokens` resolves for the corpus (pipeline/train/loop.py resolve_budget), measured in the
same run on the same tokenized data (documents cut at max_len, 256 on IMDB); plus the frozen-encoder
features pass in documents/s at `--feature-batches` (the trainer takes features.pass_batch: 16 at 256 tokens).

Prints per model samples/s and optimizer steps/s of both and their ratios. Fewer documents per step cost
some samples/s but buy more updates per epoch, which is what a small long-document corpus is short of.
Needs `textbench tokenize -d <ds>` under TEXTBENCH_ROOT (or cwd).

    TEXTBENCH_ROOT=/tmp/f/proj python bench/bench_budget.py -d imdb --steps 4 --threads 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from pipeline import paths
from pipeline.artifacts import TokenizedMeta
from pipeline.config import load_config
from pipeline.device import autocast, pick_precision
from pipeline.models.registry import BuildContext, build_model, entry
from pipeline.train.data import Split, epoch_batches, read_split
from pipeline.train.features import _encode
from pipeline.train.loop import make_optimizer, resolve_budget

CLASSIC = ["textcnn", "textrnn", "textrnn_att", "textrcnn", "fasttext", "dpcnn", "transformer", "rnn", "lstm"]


def rate(name: str, split: Split, meta: TokenizedMeta, arch: dict, batch: int, steps: int) -> tuple[float, float]:
    """(samples/s, steps/s) of `steps` training steps after one warm-up step."""
    torch.manual_seed(0)
    ctx = BuildContext(len(meta.labels), meta.vocab_size, meta.pad_id, meta.max_len)
    model, _ = build_model(name, ctx, arch)
    tc = load_config().train_for(name)
    opt = make_optimizer(model, tc)
    device = torch.device("cpu")
    precision = pick_precision(tc.precision, device)
    model.train()
    elapsed, n = 0.0, 0
    for i, rows in enumerate(epoch_batches(split, batch, seed=0, epoch=0)[: steps + 1]):
        t0 = time.perf_counter()
        ids, mask = split.collate(rows, meta.pad_id)
        with autocast(device, precision):
            loss = F.cross_entropy(model(ids, mask).float(), torch.from_numpy(split.labels[rows]))
        loss.backward()
        opt.step()
        opt.zero_grad()
        if i:
            elapsed += time.perf_counter() - t0
            n += len(rows)
    return n / elapsed, steps / elapsed


def features_rate(dataset: str, batch: int, docs: int) -> float:
    """Frozen-encoder documents/s over the first `docs` train documents at `batch` per pass."""
    from pipeline.models.bert import load_encoder_model

    tok = paths.tokenized_dir(dataset, "subword")
    meta = TokenizedMeta.of(tok)
    split = read_split(tok, "train", len(meta.labels))
    split = split.subset(np.arange(min(docs, len(split))))
    encoder = load_encoder_model(meta.encoder, None)
    device = torch.device("cpu")
    out = np.zeros((int(split.offsets[-1]), int(encoder.config.hidden_size)), dtype=np.float16)
    warm = split.subset(np.arange(min(batch, len(split))))
    _encode(encoder, warm, out, device, "fp32", "warm-up", batch)
    t0 = time.perf_counter()
    _encode(encoder, split, out, device, pick_precision("auto", device), "features", batch)
    return len(split) / (time.perf_counter() - t0)


def rnn_rates(cell: str, batch: int, length: int, steps: int) -> tuple[float, float]:
    """Forward + backward samples/s of a CPU-sized 2-layer bidirectional RNN head (hidden 64 over 128-d
    inputs, documents of `length` down to half of it): the packed-sequence baseline (the head before
    issue 18.3) vs the head's per-direction padded runs on the fused kernel."""
    from torch.nn.utils.rnn import pack_padded_sequence

    from pipeline.models.heads import RNNHead

    torch.manual_seed(0)
    head = RNNHead(128, 2, cell=cell, hidden=64, layers=2)
    x = torch.randn(batch, length, 128, requires_grad=True)
    lengths = torch.randint(length // 2, length + 1, (batch,))

    def packed() -> torch.Tensor:
        return head.rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))[0].data.sum()

    def padded_runs() -> torch.Tensor:
        return head._states(x, lengths)[0].sum()

    rates = []
    for fn in (packed, padded_runs):
        fn().backward()  # warm-up
        t0 = time.perf_counter()
        for _ in range(steps):
            fn().backward()
        rates.append(batch * steps / (time.perf_counter() - t0))
    return rates[0], rates[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-d", "--dataset", default="imdb")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per variant")
    ap.add_argument("--models", nargs="+", default=CLASSIC)
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default (all cores)")
    ap.add_argument("--feature-batches", type=int, nargs="*", default=[64, 16])
    ap.add_argument("--feature-docs", type=int, default=256)
    ap.add_argument("--rnn-cells", nargs="*", default=["lstm", "gru", "rnn"])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config()
    print(f"threads={torch.get_num_threads()} precision(auto)={pick_precision('auto', torch.device('cpu'))}")
    for name in args.models:
        tok = paths.tokenized_dir(args.dataset, entry(name).scheme)
        meta = TokenizedMeta.of(tok)
        split = read_split(tok, "train", len(meta.labels))  # the sequence ids, cut at max_len
        tc = cfg.train_for(name)
        budget = resolve_budget(tc, split).batch_size
        base_s, base_st = rate(name, split, meta, cfg.arch_for(name), tc.batch_size, args.steps)
        new_s, new_st = rate(name, split, meta, cfg.arch_for(name), budget, args.steps)
        print(
            f"{name:12s} max_len {meta.max_len} mean {split.lengths.mean():5.0f}  "
            f"batch {tc.batch_size:3d}: {base_s:7.1f} samples/s {base_st:5.2f} steps/s  "
            f"batch {budget:3d}: {new_s:7.1f} samples/s {new_st:5.2f} steps/s  "
            f"ratio samples {new_s / base_s:4.2f}x steps {new_st / base_st:4.2f}x"
        )
    for cell in args.rnn_cells:
        base, ours = rnn_rates(cell, 32, 256, args.steps)
        print(f"{cell} head at 256 tokens: packed {base:6.1f} samples/s  padded runs {ours:6.1f} ({ours / base:4.2f}x)")
    rates = {b: features_rate(args.dataset, b, args.feature_docs) for b in args.feature_batches}
    if rates:
        first = rates[args.feature_batches[0]]
        print("features pass " + "  ".join(f"batch {b}: {r:6.1f} docs/s ({r / first:4.2f}x)" for b, r in rates.items()))


if __name__ == "__main__":
    main()
