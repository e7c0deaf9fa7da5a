"""Tokenize throughput (docs/s) and peak memory: the stage vs a naive per-document loop.

    .venv/bin/python bench/bench_tokenize.py [--docs 2000]

Documents: the first --docs non-empty Reuters documents (title + body) read from the real archive,
all Reuters documents (to show memory does not grow with the corpus), and the 10,000 THUCNews
sample headlines. Each case runs in a fresh subprocess, so its peak RSS (ru_maxrss) is its own:
  naive     `tokenizer(text, padding="max_length", max_length=512, truncation=True)` one text at a
            time, outputs kept in a list (`encode_plus` in transformers < 5; same call);
  subword   the whole stage (`tokenize_scheme`, max_len 512, head): read Parquet, encode, stats,
            write Parquet + meta + tokenizer files;
  jieba-1 / jieba-2   the vocab stage with zh_mode jieba, tokenize.workers = 1 / 2.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("TEXTBENCH_CORPORA", REPO.parent / "shared" / "corpora"))


def write_prepared(root: Path, name: str, texts: list[str]) -> None:
    """All texts as train (one label); dev/test hold the first text so the stage has its three splits."""
    out = root / "data" / "prepared" / name
    out.mkdir(parents=True)
    for split, rows in (("train", texts), ("dev", texts[:1]), ("test", texts[:1])):
        ids = [str(i) for i in range(len(rows))]
        pq.write_table(pa.table({"id": ids, "text": rows, "label": ["doc"] * len(rows)}), out / f"{split}.parquet")


def reuters_texts() -> list[str]:
    from pipeline.data.reuters import iter_documents

    docs = (f"{d['title']} {d['body']}".strip() for d in iter_documents(CORPORA / "reuters21578.tar.gz"))
    return [t for t in docs if t]


def thucnews_texts() -> list[str]:
    with zipfile.ZipFile(CORPORA / "THUCNews-sample.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".txt"))
        return [zf.read(n).decode("utf-8-sig").strip() for n in names]


def run_case(case: str, root: Path, dataset: str) -> dict[str, float]:
    """One measurement in this process: docs, seconds, docs/s, peak RSS in MB."""
    os.environ["TEXTBENCH_ROOT"] = str(root)
    from transformers import AutoTokenizer  # imported before the clock starts, for every case

    from pipeline.config import config_from_dict
    from pipeline.pretrained import resolve_encoder
    from pipeline.tokenize.stage import tokenize_scheme

    texts = pq.read_table(root / "data" / "prepared" / dataset / "train.parquet").column("text").to_pylist()
    docs = len(texts) + 2
    start = time.perf_counter()
    if case == "naive":
        tok = AutoTokenizer.from_pretrained(resolve_encoder("minilm"))
        start = time.perf_counter()
        kept = [tok(t, padding="max_length", max_length=512, truncation=True) for t in texts]
        docs = len(kept)
    else:
        language = "zh" if case.startswith("jieba") else "en"
        cfg = config_from_dict(
            {
                "datasets": {dataset: {"kind": "local", "language": language, "max_len": 512, "encoder": "minilm"}},
                "benchmark": {"datasets": [dataset], "models": []},
                "tokenize": {"workers": int(case[-1]) if language == "zh" else 1, "vocab": {"zh_mode": "jieba"}},
            }
        )
        tokenize_scheme(cfg, dataset, "vocab" if language == "zh" else "subword")
    seconds = time.perf_counter() - start
    return {
        "docs": docs,
        "seconds": round(seconds, 3),
        "docs_per_s": round(docs / seconds, 1),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def spawn(case: str, root: Path, dataset: str) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--case", case, "--root", str(root), "--dataset", dataset]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode:
        sys.exit(f"{case} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=2000, help="Reuters documents for the naive-vs-stage comparison")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--dataset", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.root, args.dataset)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        reuters = reuters_texts()
        write_prepared(root, "en_small", reuters[: args.docs])
        write_prepared(root, "en_all", reuters)
        write_prepared(root, "zh", thucnews_texts())
        rows = {
            "naive": spawn("naive", root, "en_small"),
            "subword": spawn("subword", root, "en_small"),
            "subword_all": spawn("subword", root, "en_all"),
            "jieba-1": spawn("jieba-1", root, "zh"),
            "jieba-2": spawn("jieba-2", root, "zh"),
        }
    print(f"{'case':<12} {'docs':>7} {'seconds':>8} {'docs/s':>9} {'peak MB':>8}")
    for name, r in rows.items():
        print(f"{name:<12} {r['docs']:>7} {r['seconds']:>8} {r['docs_per_s']:>9} {r['peak_mb']:>8}")
    print(
        f"stage vs naive (same {args.docs} Reuters docs): {rows['subword']['docs_per_s'] / rows['naive']['docs_per_s']:.1f}x docs/s"
    )
    print(
        f"jieba pool (2 workers) vs single process: {rows['jieba-2']['docs_per_s'] / rows['jieba-1']['docs_per_s']:.2f}x docs/s"
    )
    print(
        f"peak memory, all {rows['subword_all']['docs']} vs {rows['subword']['docs']} docs: "
        f"{rows['subword_all']['peak_mb']} vs {rows['subword']['peak_mb']} MB"
    )


if __name__ == "__main__":
    main()
