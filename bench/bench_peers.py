"""What users would run instead, on the same splits: TF-IDF + LinearSVC beside the textbench rows of
the last run.

    .venv/bin/python bench/bench_peers.py [--params params.yaml]

For each dataset of `benchmark.datasets`: word 1–2-grams (English) or character 1–2-grams (Chinese),
sublinear tf, fitted on the prepared train split; C picked on dev from a small grid; scored on test.
Then every textbench row of reports/<ds>/<model>/metrics.json, best first. Not a timed test.
"""

from __future__ import annotations

import argparse
import time

import pyarrow.parquet as pq
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.svm import LinearSVC

from pipeline import paths
from pipeline.artifacts import RunMetrics
from pipeline.config import load_config

GRID = (0.3, 1.0, 3.0)


def linear_rows(dataset: str, language: str) -> list[tuple[str, float, float, float]]:
    split = {s: pq.read_table(paths.prepared_dir(dataset) / f"{s}.parquet", columns=["text", "label"]).to_pandas()
             for s in paths.SPLITS}
    analyzer = "char" if language == "zh" else "word"
    rows = []
    for name, make in (("tfidf + LinearSVC", lambda c: LinearSVC(C=c)),):
        t0 = time.perf_counter()
        vec = TfidfVectorizer(analyzer=analyzer, ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        x = {s: (vec.fit_transform if s == "train" else vec.transform)(split[s]["text"]) for s in paths.SPLITS}
        fits = [make(c).fit(x["train"], split["train"]["label"]) for c in GRID]
        best = max(fits, key=lambda m: accuracy_score(split["dev"]["label"], m.predict(x["dev"])))
        pred = best.predict(x["test"])
        rows.append((name, accuracy_score(split["test"]["label"], pred),
                     f1_score(split["test"]["label"], pred, average="macro"), time.perf_counter() - t0))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml", help="the params file of the run to compare with")
    cfg = load_config(ap.parse_args().params)
    for ds in cfg.benchmark.datasets:
        print(f"\n{ds}\n| model | accuracy | macro-F1 | train s |\n|---|---:|---:|---:|")
        rows = linear_rows(ds, cfg.dataset(ds).language)
        for model in cfg.benchmark.models:
            m = RunMetrics.of(paths.report_dir(ds, model))
            if m is not None and not getattr(m, "not_comparable", ""):
                rows.append((f"textbench {model}", m.accuracy, m.macro_f1, getattr(m, "train_time_s", float("nan"))))
        for name, acc, f1, secs in sorted(rows, key=lambda r: -r[1]):
            print(f"| {name} | {acc:.4f} | {f1:.4f} | {secs:.1f} |")


if __name__ == "__main__":
    main()
