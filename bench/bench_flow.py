"""Incremental benchmark runs vs the naive rerun-everything, with the real flow and trainer.

A generated 3-class corpus (local CSV → prepare → tokenize vocab) and N classic models. Timed, each
a `run_benchmark` in this process against one temporary Prefect server:
    full        first run, every model trains
    noop        nothing changed: every model is skipped
    one-lr      one model's lr changed: only it retrains
    naive       the same rerun with --force (what a script without fingerprints does)
Prints seconds and the naive/incremental ratios.

    .venv/bin/python bench/bench_flow.py [--models textcnn fasttext dpcnn transformer] [--docs 600]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def make_project(root: Path, models: list[str], docs: int) -> Path:
    words = ["goal match team score", "bank rate stock fund", "chip code robot cloud"]
    lines = ["text,label"] + [
        f"{words[i % 3]} {words[(i * 7) % 3].split()[i % 4]} doc {i},c{i % 3}" for i in range(docs)
    ]
    (root / "corpus.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["datasets"] = {"bench": {"kind": "local", "path": "corpus.csv", "ratios": [0.8, 0.1, 0.1], "max_len": 32}}
    raw["benchmark"] = {"datasets": ["bench"], "models": models, "seeds": [1]}
    raw["train"] = {**raw["train"], "max_steps": 20, "eval_every": 10, "threads": 0}
    raw["models"] = {m: {"arch": {"embed_dim": 64}, "train": {"epochs": 1}} for m in models}
    raw["orchestration"] = {"gpus": "none"}
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["textcnn", "fasttext", "dpcnn", "transformer"])
    ap.add_argument("--docs", type=int, default=600)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    os.environ.update(TEXTBENCH_ROOT=str(root), TEXTBENCH_SLOT_DIR=str(root / ".slots"))
    os.chdir(root)
    from prefect.testing.utilities import prefect_test_harness

    from flows.benchmark import run_benchmark
    from pipeline.config import load_config
    from pipeline.data.prepare import prepare
    from pipeline.tokenize.stage import tokenize_dataset

    params = make_project(root, args.models, args.docs)
    cfg = load_config(params)
    prepare(cfg, "bench")
    tokenize_dataset(cfg, "bench", ("vocab",))

    def timed(label: str, **kw: object) -> float:
        start = time.perf_counter()
        statuses = [r["status"] for r in run_benchmark(params, **kw)]
        secs = time.perf_counter() - start
        print(f"{label:8s} {secs:7.1f} s  {statuses}", flush=True)
        return secs

    def set_lr(lr: float) -> None:
        raw = yaml.safe_load(params.read_text(encoding="utf-8"))
        raw["models"][args.models[0]]["train"]["lr"] = lr
        params.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

    try:
        with prefect_test_harness(server_startup_timeout=300):
            timed("full")
            noop = timed("noop")
            set_lr(2e-3)
            one = timed("one-lr")
            set_lr(3e-3)
            naive = timed("naive", force=True)
        print(f"models: {len(args.models)}; naive/noop = {naive / noop:.1f}x; naive/one-lr = {naive / one:.1f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
