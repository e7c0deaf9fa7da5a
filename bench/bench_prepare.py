"""Prepare throughput (docs/s) and peak memory: textbench's streaming readers vs naive baselines.

    .venv/bin/python bench/bench_prepare.py [--sizes 50000 200000] [--per-class 1000]

Each case runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own. Cases:
  reuters   full prepare on the real archive (../shared/corpora); naive reader: extract the tarball
            to disk, then parse every file;
  thucnews  full prepare on a generated THUCNews-layout zip of N files (10 categories, title + body,
            per_class sampled); naive reader: read every member's text into memory, then sample.
docs/s counts documents parsed (Reuters) or zip members scanned (THUCNews).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("TEXTBENCH_CORPORA", REPO.parent / "shared" / "corpora"))
CATS = ["财经", "房产", "股票", "教育", "科技", "社会", "时政", "体育", "游戏", "娱乐"]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_zip(path: Path, n: int, body_chars: int) -> None:
    """n files THUCNews/<cat>/<i>.txt: a title line and a body of `body_chars` CJK characters."""
    rng = random.Random(0)
    bodies = ["".join(rng.choices("中国经济市场公司发展新闻体育科技教育政府城市", k=body_chars)) for _ in range(997)]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(n):
            cat = CATS[i % len(CATS)]
            zf.writestr(f"THUCNews/{cat}/{i}.txt", f"{cat}标题{i}\n{bodies[i % len(bodies)]}\n")


def config(root: Path, ds: str, archive: Path, per_class: int):
    import yaml

    from pipeline.config import config_from_dict

    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["datasets"][ds]["filename"] = archive.name
    raw["datasets"]["thucnews"]["per_class"] = per_class
    target = root / "data" / "raw" / ds / archive.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(archive)
    return config_from_dict(raw)


def naive_reuters_documents(archive: Path):
    """Baseline: extract the whole tarball to disk first, then parse each SGML file."""
    from pipeline.data import reuters

    out = Path(os.environ["TEXTBENCH_ROOT"]) / "extracted"
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    for p in sorted(out.glob("reut2-*.sgm")):
        yield from reuters.parse_sgml(p.read_text(encoding="latin-1"), p.name)


def naive_thucnews_read(ds, name: str, archive: Path, seed: int):
    """Baseline: read every member's text into memory, then make the same seeded choice."""
    from pipeline.data import thucnews
    from pipeline.data.corpus import Corpus, Doc

    with zipfile.ZipFile(archive) as zf:
        texts = {n: zf.read(n).decode("utf-8") for n in zf.namelist()}
    chosen, available = thucnews.choose(
        ((n, None) for n in texts), ds.categories, ds.per_class, seed, archive.name, name
    )
    docs = [Doc(n, texts[n], c) for c, picked in chosen.items() for n, _ in picked]
    return Corpus(docs=docs, stats={"available_per_class": available})


def run_case(case: str, archive: Path, per_class: int) -> dict:
    """Run one full `prepare` in this process (with the naive reader patched in for *-naive)."""
    from pipeline.artifacts import read_card
    from pipeline.data import reuters, thucnews
    from pipeline.data.prepare import prepare

    root = Path(tempfile.mkdtemp(prefix="bench-prepare-"))
    os.environ["TEXTBENCH_ROOT"] = str(root)
    ds = "reuters" if case.startswith("reuters") else "thucnews"
    cfg = config(root, ds, archive, per_class)
    if case == "reuters-naive":
        reuters.iter_documents = naive_reuters_documents
    if case == "thucnews-naive":
        thucnews.read = naive_thucnews_read
    base = peak_mb()
    t0 = time.perf_counter()
    prepare(cfg, ds)
    card = read_card(ds).as_dict()
    seconds, peak = time.perf_counter() - t0, peak_mb()
    docs = card["reader"]["parsed_docs"] if ds == "reuters" else sum(card["reader"]["available_per_class"].values())
    return {
        "case": case,
        "docs": docs,
        "seconds": round(seconds, 2),
        "docs_per_s": round(docs / seconds),
        "peak_rss_mb": round(peak),
        "peak_growth_mb": round(peak - base),
    }


def measure(case: str, archive: Path, per_class: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--one", case, str(archive), str(per_class)],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50000, 200000])
    ap.add_argument("--per-class", type=int, default=1000)
    ap.add_argument("--body-chars", type=int, default=300, help="CJK characters per generated body")
    ap.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        sys.path.insert(0, str(REPO))
        print(json.dumps(run_case(args.one[0], Path(args.one[1]), int(args.one[2]))))
        return
    rows = [measure(c, CORPORA / "reuters21578.tar.gz", 0) for c in ("reuters", "reuters-naive")]
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            archive = Path(tmp) / f"thuc-{n}.zip"
            make_zip(archive, n, args.body_chars)
            rows += [{**measure(c, archive, args.per_class), "files": n} for c in ("thucnews", "thucnews-naive")]
    print("| case | files | docs | s | docs/s | peak RSS MB | peak growth MB |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r.get('files', '')} | {r['docs']} | {r['seconds']} | {r['docs_per_s']} "
            f"| {r['peak_rss_mb']} | {r['peak_growth_mb']} |"
        )
    by = {(r["case"], r.get("files")): r for r in rows}
    ours, naive = by[("reuters", None)], by[("reuters-naive", None)]
    print(
        f"\nreuters: streaming prepare {ours['docs_per_s'] / naive['docs_per_s']:.2f}x the docs/s of "
        "extract-then-parse prepare"
    )
    lo, hi = min(args.sizes), max(args.sizes)
    for c in ("thucnews", "thucnews-naive"):
        print(
            f"{c}: peak growth {by[(c, lo)]['peak_growth_mb']} MB at {lo} files -> "
            f"{by[(c, hi)]['peak_growth_mb']} MB at {hi} files"
        )
    print(
        f"naive / streaming peak growth at {hi} files: "
        f"{by[('thucnews-naive', hi)]['peak_growth_mb'] / max(by[('thucnews', hi)]['peak_growth_mb'], 1):.1f}x"
    )


if __name__ == "__main__":
    main()
