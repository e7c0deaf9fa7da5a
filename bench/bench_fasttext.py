"""textbench `fasttext` beside the reference FastText (Chinese-Text-Classification-Pytorch, 80.7% test
accuracy on 10-class THUCNews titles): trains through `pipeline.train.train` on the prepared,
tokenized sample (data/tokenized/<ds>/vocab) and prints test accuracy, macro-F1, the dev curve,
train seconds and seconds per epoch. Not a timed test; one training at a time.

Settings are params.yaml's (families, models.fasttext, train) unless a flag overrides them; the
flags write models.fasttext.{arch,train}. Models and reports go to --out (default
/tmp/bench_fasttext), never to the project's models/ and reports/. Run from the project root (or
set TEXTBENCH_ROOT).

    .venv/bin/python bench/bench_fasttext.py                                # params.yaml's fasttext
    .venv/bin/python bench/bench_fasttext.py --models fasttext textcnn      # + textcnn, train seconds side by side
    .venv/bin/python bench/bench_fasttext.py --epochs 6 --patience 0        # a fixed-length dev curve
    .venv/bin/python bench/bench_fasttext.py --embed-dim 300 --buckets 250499 --init normal \\
        --arch '{"hidden": [256]}' --lr 1e-3 --epochs 6 --batch-size 128 --patience 0   # the reference's settings
    .venv/bin/python bench/bench_fasttext.py --speed 20                     # step time vs buckets, vs textcnn
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path
from typing import Any

import yaml

from pipeline import paths
from pipeline.config import config_from_dict

REFERENCE = {"thucnews": 0.807}  # Chinese-Text-Classification-Pytorch FastText, test accuracy (full THUCNews)


def train_one(raw: dict[str, Any], dataset: str, model: str, out: Path) -> dict[str, Any]:
    from pipeline.train.stage import train

    cfg = config_from_dict(raw, source="bench_fasttext")
    metrics = train(
        cfg, dataset, model, model_dir=out / "models" / dataset / model, report_dir=out / "reports" / dataset / model
    )
    with open(out / "reports" / dataset / model / paths.CURVES_CSV, encoding="utf-8") as f:
        metrics["curves"] = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return metrics


def step_times(
    raw: dict[str, Any], dataset: str, models: list[tuple[str, dict[str, Any]]], steps: int, threads: int
) -> tuple[dict[str, float], int]:
    """Median seconds per training step (forward, backward, clip, AdamW) of each model on the same
    real batches (fasttext's batch size), the models taking turns step by step so that a shared,
    busy CPU slows them alike. Returns the medians and the steps per epoch."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from pipeline.artifacts import TokenizedMeta
    from pipeline.models.registry import BuildContext, build_model
    from pipeline.train.data import epoch_batches, read_split
    from pipeline.train.loop import clip_grad_norm, make_optimizer

    torch.set_num_threads(threads)
    cfg = config_from_dict(raw, source="bench_fasttext")
    tc = cfg.train_for("fasttext")
    tok = paths.tokenized_dir(dataset, "vocab")
    meta = TokenizedMeta.of(tok).as_dict()
    split = read_split(tok, "train", len(meta["labels"]))
    ctx = BuildContext(
        num_labels=len(meta["labels"]),
        vocab_size=int(meta["vocab_size"]),
        pad_id=int(meta["pad_id"]),
        max_len=int(meta["max_len"]),
    )
    built = []
    for name, arch in models:
        torch.manual_seed(0)
        net, _ = build_model(name, ctx, arch)
        built.append((net.train(), make_optimizer(net, tc)))
    times: list[list[float]] = [[] for _ in models]
    batches = epoch_batches(split, tc.batch_size, seed=0, epoch=0)
    for i in range(steps + 2):  # two warm-up steps
        rows = batches[i % len(batches)]
        ids, mask = split.collate(rows, int(meta["pad_id"]))
        y = torch.from_numpy(split.labels[rows])
        for k, (net, opt) in enumerate(built):
            t0 = time.perf_counter()
            F.cross_entropy(net(ids, mask).float(), y).backward()
            clip_grad_norm(list(net.parameters()), tc.grad_clip or float("inf"))
            opt.step()
            opt.zero_grad(set_to_none=True)
            if i >= 2:
                times[k].append(time.perf_counter() - t0)
    medians = {
        f"{name} {json.dumps(arch, sort_keys=True)}": float(np.median(t)) for (name, arch), t in zip(models, times)
    }
    return medians, len(batches)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="thucnews")
    ap.add_argument("--params", default=str(paths.root() / "params.yaml"))
    ap.add_argument(
        "--models",
        nargs="+",
        choices=["fasttext", "textcnn"],
        default=["fasttext"],
        help="textcnn trains with params.yaml's settings as they are (the speed comparison)",
    )
    arch = ap.add_argument_group("models.fasttext.arch (default: params.yaml over the registry)")
    arch.add_argument("--embed-dim", type=int)
    arch.add_argument("--buckets", type=int, help="ngram_buckets (per table in concat mode)")
    arch.add_argument("--mode", choices=["sum", "concat"], help="ngram_mode")
    arch.add_argument("--init", choices=["normal", "uniform"], help="embed_init")
    arch.add_argument("--arch", default="{}", help='more arch keys as JSON, e.g. \'{"hidden": [256], "dropout": 0.3}\'')
    train = ap.add_argument_group("models.fasttext.train (default: params.yaml)")
    train.add_argument("--lr", type=float)
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--patience", type=int, help="0 = run all --epochs (a full dev curve)")
    train.add_argument("--train", default="{}", help="more train keys as JSON, e.g. '{\"weight_decay\": 0.1}'")
    ap.add_argument("--threads", type=int, default=2, help="train.threads for every model")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--out", default="/tmp/bench_fasttext")
    ap.add_argument("--json", default="", help="append one JSON line per run to this file")
    ap.add_argument(
        "--speed",
        type=int,
        default=0,
        metavar="STEPS",
        help="instead of training: median step time of fasttext at each --speed-buckets count and of "
        "textcnn, taking turns for STEPS real batches",
    )
    ap.add_argument("--speed-buckets", type=int, nargs="+", default=[10000, 20000, 50000, 100000, 250499])
    args = ap.parse_args()

    raw = yaml.safe_load(Path(args.params).read_text(encoding="utf-8"))
    raw.setdefault("train", {})["threads"] = args.threads
    raw["train"]["max_train_samples"] = 0
    if args.seed is not None:
        raw["seed"] = args.seed
    spec = raw.setdefault("models", {}).setdefault("fasttext", {})
    ft_arch = {**spec.get("arch", {}), **json.loads(args.arch)}
    for key, value in (
        ("embed_dim", args.embed_dim),
        ("ngram_buckets", args.buckets),
        ("ngram_mode", args.mode),
        ("embed_init", args.init),
    ):
        if value is not None:
            ft_arch[key] = value
    ft_train = {**spec.get("train", {}), **json.loads(args.train)}
    for key, value in (
        ("lr", args.lr),
        ("epochs", args.epochs),
        ("batch_size", args.batch_size),
        ("patience", args.patience),
    ):
        if value is not None:
            ft_train[key] = value
    raw["models"]["fasttext"] = {"arch": ft_arch, "train": ft_train}
    out = Path(args.out)

    if args.speed:
        from pipeline.models.registry import resolve_arch

        cfg = config_from_dict(raw, source="bench_fasttext")
        ft, cnn = cfg.arch_for("fasttext"), cfg.arch_for("textcnn")
        models = [("fasttext", {**ft, "ngram_buckets": b}) for b in args.speed_buckets] + [("textcnn", cnn)]
        per, per_epoch = step_times(raw, args.dataset, models, args.speed, args.threads)
        base = per[f"textcnn {json.dumps(cnn, sort_keys=True)}"]
        print(
            f"{args.dataset}: median train step, batch {cfg.train_for('fasttext').batch_size}, {args.threads} threads, "
            f"{per_epoch} steps/epoch; fasttext arch {json.dumps(resolve_arch('fasttext', ft))}"
        )
        for (name, arch_kw), sec in zip(models, per.values()):
            label = f"fasttext, {arch_kw['ngram_buckets']:>7,} buckets" if name == "fasttext" else "textcnn"
            print(
                f"  {label:28s} {sec * 1000:7.1f} ms/step {sec * per_epoch:6.1f} s/epoch  {base / sec:5.2f}x textcnn's speed"
            )
        return

    ref = REFERENCE.get(args.dataset)
    from pipeline.artifacts import TokenizedMeta

    train_docs = TokenizedMeta.of(paths.tokenized_dir(args.dataset, "vocab")).splits["train"].docs
    rows = []
    for model in args.models:
        m = train_one(raw, args.dataset, model, out)
        tr = m["params"]["train"]
        epochs_run = m["steps"] / math.ceil(train_docs / tr["batch_size"])
        best_dev = max(r["dev_accuracy"] for r in m["curves"])
        curve = " ".join(f"{int(r['step'])}:{r['dev_accuracy']:.3f}" for r in m["curves"])
        print(f"\n{args.dataset} {model}  arch {json.dumps(m['params']['arch'], ensure_ascii=False)}")
        print(
            f"  train  lr {tr['lr']:g}, epochs {tr['epochs']} (patience {tr.get('patience')}), batch {tr['batch_size']}, "
            f"threads {args.threads}, precision {m['params']['precision']}, {m['num_params']:,} params"
        )
        print(f"  dev accuracy (step:acc) {curve}")
        print(f"  best dev {best_dev:.4f} @ step {m['best_step']} of {m['steps']}; stop: {m.get('stop_reason', '?')}")
        ref_txt = f"   (reference FastText {ref:.3f})" if ref and model == "fasttext" else ""
        print(f"  test accuracy {m['accuracy']:.4f}{ref_txt}   macro-F1 {m['macro_f1']:.4f}")
        print(
            f"  train {m['train_time_s']:.1f} s ({m['train_time_s'] / max(epochs_run, 1e-9):.1f} s/epoch over "
            f"{epochs_run:.1f} epochs, dev evaluations included), {m['train_samples_per_s']:.0f} samples/s, "
            f"peak memory {m['peak_memory_mb']:.0f} MB"
        )
        rows.append((model, m, best_dev, epochs_run))
        if args.json:
            row = {
                "dataset": args.dataset,
                "model": model,
                "seed": m["seed"],
                "arch": m["params"]["arch"],
                "train": tr,
                "best_dev": best_dev,
                "test_acc": m["accuracy"],
                "macro_f1": m["macro_f1"],
                "train_s": m["train_time_s"],
                "epochs_run": epochs_run,
                "peak_mb": m["peak_memory_mb"],
                "best_step": m["best_step"],
                "steps": m["steps"],
                "curves": m["curves"],
            }
            with open(args.json, "a", encoding="utf-8") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    if len(rows) > 1:
        print(f"\n{'model':10s} {'dev':>7s} {'test':>7s} {'macroF1':>8s} {'train s':>8s} {'s/epoch':>8s}")
        for model, m, best_dev, epochs_run in rows:
            print(
                f"{model:10s} {best_dev:7.4f} {m['accuracy']:7.4f} {m['macro_f1']:8.4f} {m['train_time_s']:8.1f} "
                f"{m['train_time_s'] / max(epochs_run, 1e-9):8.1f}"
            )
    if ref is not None:
        print(f"reference FastText (Chinese-Text-Classification-Pytorch, full THUCNews): test accuracy {ref:.3f}")


if __name__ == "__main__":
    main()
