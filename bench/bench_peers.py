"""What users would run instead, on the same splits: TF-IDF + LinearSVC and the official fastText
beside the textbench rows of the last run.

    .venv/bin/python bench/bench_peers.py [--params params.yaml] [-d DATASET ...]   # TEXTBENCH_ROOT=<checkout>

For each dataset of `benchmark.datasets`, on the prepared splits, scored on test:
- TF-IDF + LinearSVC: word 1–2-grams (English) or character 1–2-grams (Chinese), sublinear tf,
  fitted on train; C picked on dev from a small grid.
- Official fastText (the `fasttext` C++ extension; bench-only: `pip install fasttext-wheel` or
  `fasttext`, else its row says so and the rest runs): supervised, wordNgrams 2, epoch 25, lr 1.0,
  dim 100, thread 1, seed 0, on lowercased tokens with punctuation split off (its own example's
  preprocessing); Chinese as space-separated characters. Train time includes writing its input file.
  Twice: with its default 2M hashed n-gram buckets, and with textbench fasttext's `ngram_buckets` (the
  table size is most of the difference between the two; bench/RESULTS.md, issue 18).
Then every textbench row of reports/<ds>/<model>/metrics.json, best first. Not a timed test.

Measured (fasttext-wheel 0.9.2, NumPy 2.4, loaded 2-core box; textbench fasttext: the default run):
  reuters   official fastText 0.9093 / macro-F1 0.5817, 18.6 s   (textbench fasttext 0.8955 / 0.5994, 7.7 s)
  thucnews  official fastText 0.7894 / macro-F1 0.7908,  2.3 s   (textbench fasttext 0.8415 / 0.8397, 5.6 s)
IMDB sample (2,500 reviews drawn with seed 0 from aclImdb-train.tar.gz, 1,250 per class, as a CSV; a local
entry with kind/language/path and ratios [0.8, 0.1, 0.1], no max_len: 256 chosen, 31% of train cut there;
250 test reviews, so ±2.2 points of standard error), accuracy:
  tfidf + LinearSVC 0.8480; textbench tfidf_svm 0.8600 reading whole documents (bag_max_len 8192; 0.8240
  with bag_max_len 256, the old cut), tfidf_lr 0.8440 (0.8240), fasttext 0.8200 (0.7960)
IMDB 25k training half (22,485 / 1,250 / 1,250 carved; eval_every auto): tfidf + LinearSVC 0.9088, textbench
tfidf_svm 0.9120, official fastText 0.8944 (train file shuffled; 0.8736 with bucket 20,000), textbench fasttext
0.9000 (0.8965 mean of seeds 42 / 7 / 1; 200k sparse n-gram buckets; 0.8856 with the former 20k dense ones;
bench/RESULTS.md)
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.svm import LinearSVC

from pipeline import paths
from pipeline.artifacts import RunMetrics
from pipeline.config import load_config
from pipeline.effective import effective

try:
    import fasttext
except ImportError:
    fasttext = None

GRID = (0.3, 1.0, 3.0)
FT_BUCKETS = 2_000_000  # the official fastText's default -bucket
Row = tuple[str, float, float, float]
# fastText splits on whitespace only: words and punctuation apart (English), one token a character
# (Chinese; Latin words and numbers kept whole).
TOKENS = {"en": re.compile(r"\w+|[^\w\s]"), "zh": re.compile(r"[a-z0-9]+|\S")}


def linear_rows(split: dict, language: str) -> list[Row]:
    analyzer = "char" if language == "zh" else "word"
    rows = []
    for name, make in (("tfidf + LinearSVC", lambda c: LinearSVC(C=c)),):
        t0 = time.perf_counter()
        vec = TfidfVectorizer(analyzer=analyzer, ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        x = {s: (vec.fit_transform if s == "train" else vec.transform)(split[s]["text"]) for s in paths.SPLITS}
        fits = [make(c).fit(x["train"], split["train"]["label"]) for c in GRID]
        best = max(fits, key=lambda m: accuracy_score(split["dev"]["label"], m.predict(x["dev"])))
        pred = best.predict(x["test"])
        rows.append(
            (
                name,
                accuracy_score(split["test"]["label"], pred),
                f1_score(split["test"]["label"], pred, average="macro"),
                time.perf_counter() - t0,
            )
        )
    return rows


def label(y: str) -> str:
    """A class as a fastText label token (no whitespace)."""
    return "__label__" + "_".join(y.split())


def fasttext_rows(split: dict, language: str, buckets: list[int]) -> list[Row]:
    """The official fastText, trained on train, scored on test (dev unused: fixed settings), once per
    `buckets` hashed n-gram table size (its default 2M; textbench fasttext's `ngram_buckets`). The splits
    are tokenized and the train file written once; each row's train time includes writing that file."""
    token = TOKENS[language]
    lines = {s: [" ".join(token.findall(t.lower())) for t in split[s]["text"]] for s in ("train", "test")}
    gold = [label(y) for y in split["test"]["label"]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        # fastText reads its file in order: shuffled (its docs' `shuf`), or a split stored class by class (a
        # folder-per-class tree) trains on one class after the other and ends near chance (IMDB sample 0.52)
        train_lines = [f"{label(y)} {x}\n" for x, y in zip(lines["train"], split["train"]["label"])]
        random.Random(0).shuffle(train_lines)
        train = Path(tmp) / "train.txt"
        train.write_text("".join(train_lines), encoding="utf-8")
        write_s = time.perf_counter() - t0
        for bucket in buckets:
            t0 = time.perf_counter()
            model = fasttext.train_supervised(
                str(train), wordNgrams=2, epoch=25, lr=1.0, dim=100, thread=1, seed=0, bucket=bucket, verbose=0
            )
            secs = write_s + time.perf_counter() - t0
            # model.predict ends in np.array(..., copy=False), which NumPy 2 refuses: call the binding it wraps.
            labels, _ = model.f.multilinePredict([x + "\n" for x in lines["test"]], 1, 0.0, "strict")
            pred = [ls[0] for ls in labels]
            name = "official fastText" + ("" if bucket == FT_BUCKETS else f" (bucket {bucket:,})")
            rows.append((name, accuracy_score(gold, pred), f1_score(gold, pred, average="macro"), secs))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml", help="the params file of the run to compare with")
    ap.add_argument("-d", "--dataset", action="append", help="these datasets (repeatable); default: benchmark.datasets")
    args = ap.parse_args()
    cfg = load_config(args.params)
    buckets = effective(cfg, "fasttext")["arch"]["ngram_buckets"]
    for ds in args.dataset or cfg.benchmark.datasets:
        print(f"\n{ds}\n| model | accuracy | macro-F1 | train s |\n|---|---:|---:|---:|")
        split = {
            s: pq.read_table(paths.prepared_dir(ds) / f"{s}.parquet", columns=["text", "label"]).to_pandas()
            for s in paths.SPLITS
        }
        language = cfg.dataset(ds).language
        rows = linear_rows(split, language)
        # beside its default, the official one with textbench fasttext's table: what the bucket count costs
        if fasttext:
            rows += fasttext_rows(split, language, list(dict.fromkeys([FT_BUCKETS, buckets])))
        for model in cfg.benchmark.models:
            m = RunMetrics.of(paths.report_dir(ds, model))
            if m is not None and not getattr(m, "not_comparable", ""):
                rows.append((f"textbench {model}", m.accuracy, m.macro_f1, getattr(m, "train_time_s", float("nan"))))
        for name, acc, f1, secs in sorted(rows, key=lambda r: -r[1]):
            print(f"| {name} | {acc:.4f} | {f1:.4f} | {secs:.1f} |")
        if fasttext is None:
            print("| official fastText | not installed: `pip install fasttext-wheel` (or `fasttext`) | | |")


if __name__ == "__main__":
    main()
