"""Inference speed on this CPU: batched vs one text at a time, and int8 / bf16 / ONNX vs fp32.

Trains a small `textcnn` and a MiniLM `bert` on real Reuters-21578 (ModApte, from
../shared/corpora) in a scratch project, or on the generated planted-word task when the corpus is
absent (`--generated`), then times on the first `--docs` test documents, all in one run:

    naive    one text at a time, tokenizer + forward per text (as tutorials do)
    fp32     `Predictor.predict_proba` on the whole list: length-sorted batches of `--batch-size`
    int8     torch dynamic int8 (Linear/LSTM)          bf16   bfloat16 autocast (AVX512-BF16/AMX)
    onnx     onnxruntime on the exported graph         onnx-int8  onnxruntime dynamic int8

Prints docs/s, speed-up vs naive and vs fp32, and the accuracy change vs fp32.

    .venv/bin/python bench/bench_infer.py [--docs 500] [--threads 1] [--generated]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
CORPORA = REPO.parent / "shared" / "corpora"

from pipeline import paths  # noqa: E402 (after the path setup)

TRAIN = {  # small but real runs: a few minutes on 2 busy cores
    "textcnn": {"epochs": 3, "batch_size": 64, "eval_every": 50, "precision": "fp32"},
    "bert": {"epochs": 1, "max_steps": 150, "batch_size": 32, "lr": 1e-4, "eval_every": 50, "precision": "fp32"},
}


def build(root: Path, generated: bool, threads: int) -> None:
    """Scratch project: data → tokenize → train both models; stages already done in `root` are skipped."""
    from pipeline.config import load_config
    from pipeline.data.download import download
    from pipeline.data.prepare import prepare
    from pipeline.tokenize.stage import tokenize_dataset
    from pipeline.train.stage import train

    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["mirror"] = str(CORPORA)
    params["datasets"]["reuters"]["max_len"] = 128
    params["train"]["threads"] = threads
    params["train"] |= {"patience": 0, "time_budget_s": 0}  # the bench's fixed budgets, fine-tuned bert
    params["families"] = {}
    params["models"] = {name: {"train": settings} for name, settings in TRAIN.items()}
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    os.environ["TEXTBENCH_ROOT"] = str(root)
    cfg = load_config(root / "params.yaml")
    if not (root / "data" / "tokenized" / "reuters" / "subword" / paths.META).is_file():
        if generated:
            from serve_models import write_corpus

            write_corpus(root, {"train": 2000, "dev": 200, "test": 1000})
        else:
            download(cfg, "reuters")
            prepare(cfg, "reuters")
        tokenize_dataset(cfg, "reuters", ("vocab", "subword"))
    for model in TRAIN:
        if not (root / "models" / "reuters" / model / paths.WEIGHTS).is_file():
            train(cfg, "reuters", model, resume=True)  # an interrupted bench continues where it stopped


def timed(fn, texts: list[str], repeat: int) -> tuple[float, np.ndarray]:
    """Best wall time of `repeat` calls of `fn(texts)` after a warm-up on a few texts, and the result."""
    fn(texts[:16])
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(texts)
        best = min(best, time.perf_counter() - start)
    return best, out


def bench_model(model_dir: Path, texts: list[str], gold: np.ndarray, batch_size: int, repeat: int) -> list[dict]:
    from pipeline.artifacts import ExportSource
    from pipeline.device import native_bf16
    from pipeline.serve.export import export_onnx, quantize_onnx
    from pipeline.serve.predictor import Predictor

    base = Predictor.load(model_dir, batch_size=batch_size, device="cpu")
    out = paths.export_dir(model_dir)
    out.mkdir(exist_ok=True)
    export_onnx(base, out / paths.ONNX_FILES["onnx"])
    quantize_onnx(out / paths.ONNX_FILES["onnx"], out / paths.ONNX_FILES["onnx-int8"])
    ExportSource.of(model_dir).write(out / paths.EXPORT_SOURCE)  # the onnx variants load only a fresh export
    rows = []
    seconds, probs = timed(lambda ts: np.concatenate([base.predict_proba([t]) for t in ts]), texts, repeat=1)
    rows.append({"runtime": "naive (1 at a time)", "s": seconds, "probs": probs})
    for variant in ["fp32", "int8", *(["bf16"] if native_bf16(torch.device("cpu")) else []), "onnx", "onnx-int8"]:
        p = (
            base
            if variant == "fp32"
            else Predictor.load(model_dir, variant=variant, batch_size=batch_size, device="cpu")
        )
        seconds, probs = timed(p.predict_proba, texts, repeat)
        rows.append({"runtime": variant, "s": seconds, "probs": probs})
    for r in rows:
        r["docs_per_s"] = len(texts) / r["s"]
        r["accuracy"] = float((r["probs"].argmax(1) == gold).mean())
    fp32 = next(r for r in rows if r["runtime"] == "fp32")
    for r in rows:
        r["acc_delta"] = r["accuracy"] - fp32["accuracy"]
        r["vs_naive"] = rows[0]["s"] / r["s"]
        r["vs_fp32"] = fp32["s"] / r["s"]
        r["agree"] = float((r["probs"].argmax(1) == fp32["probs"].argmax(1)).mean())
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=500, help="test documents timed")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch/onnxruntime intra-op threads")
    ap.add_argument("--repeat", type=int, default=2, help="timed passes per runtime (best is kept)")
    ap.add_argument("--generated", action="store_true", help="use the generated task instead of Reuters")
    ap.add_argument(
        "--workdir", type=Path, default=None, help="scratch project to (re)use: finished stages are skipped"
    )
    args = ap.parse_args()
    from pipeline.serve.predictor import Predictor

    generated = args.generated or not (CORPORA / "reuters21578.tar.gz").is_file()
    torch.set_num_threads(args.threads)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench-infer-"))
    root.mkdir(parents=True, exist_ok=True)
    build(root, generated, args.threads)
    torch.set_num_threads(args.threads)
    print(
        f"data: {'generated planted-word task' if generated else 'Reuters-21578 ModApte (real)'}; "
        f"{args.docs} test docs; batch {args.batch_size}; {args.threads} thread(s); cpu: {os.cpu_count()} cores; "
        f"workdir {root}"
    )
    print("| model | runtime | docs/s | vs naive | vs fp32 | accuracy | Δacc vs fp32 | same pred as fp32 |")
    print("|---|---|---|---|---|---|---|---|")
    for name in TRAIN:
        preds = pq.read_table(root / "reports" / "reuters" / name / paths.PREDICTIONS).slice(0, args.docs)
        labels = Predictor.load(root / "models" / "reuters" / name, device="cpu").labels
        gold = np.asarray([labels.index(x) for x in preds.column("label").to_pylist()])
        for r in bench_model(
            root / "models" / "reuters" / name, preds.column("text").to_pylist(), gold, args.batch_size, args.repeat
        ):
            print(
                f"| {name} | {r['runtime']} | {r['docs_per_s']:.0f} | {r['vs_naive']:.2f}x | {r['vs_fp32']:.2f}x | "
                f"{r['accuracy']:.4f} | {r['acc_delta']:+.4f} | {100 * r['agree']:.1f}% |",
                flush=True,
            )


if __name__ == "__main__":
    main()
