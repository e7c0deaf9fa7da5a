"""THUCNews (`THUCNews/<category>/<id>.txt`, UTF-8, title line then body) read from the zip.

The real zip holds ~836k members, so nothing is extracted and no text is read before the sample
is chosen: members are grouped by category from their NAMES, each name is ranked by
sha256("<seed>:<name>") and the `per_class` lowest are kept. The choice therefore depends only on
the seed and the names, never on the member order inside the zip. Only chosen members are read.
Text = title + " " + body (whitespace is normalised afterwards anyway).
"""

from __future__ import annotations

import hashlib
import heapq
import zipfile
import zlib
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from pipeline.config import DatasetConfig
from pipeline.data.corpus import Corpus, Doc
from pipeline.errors import TextbenchError


def choose(
    names: list[str], categories: list[str], per_class: int, seed: int, archive: str
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """(category -> chosen member names sorted, category -> members available), validated."""
    by_cat: dict[str, list[str]] = defaultdict(list)
    for n in names:
        parts = n.split("/")
        if len(parts) >= 2 and n.endswith(".txt"):
            by_cat[parts[-2]].append(n)
    wanted = categories or sorted(by_cat)
    chosen = {}
    for cat in wanted:
        members = by_cat.get(cat, [])
        if not members:
            state = "is empty" if any(f"/{cat}/" in f"/{n}" for n in names) else "does not exist"
            raise TextbenchError(
                f"{archive}: category '{cat}' {state} (categories with .txt files: {sorted(by_cat)}); "
                "fix datasets.<ds>.categories"
            )
        if per_class > len(members):
            raise TextbenchError(
                f"{archive}: category '{cat}' has {len(members)} documents but per_class is {per_class}; "
                f"lower datasets.<ds>.per_class to at most {len(members)} (0 = all)"
            )
        picked = heapq.nsmallest(per_class, members, key=lambda n: _rank(seed, n)) if per_class else members
        chosen[cat] = sorted(picked)
    return chosen, {c: len(by_cat[c]) for c in wanted}


def _rank(seed: int, name: str) -> bytes:
    return hashlib.sha256(f"{seed}:{name}".encode()).digest()


def read(ds: DatasetConfig, archive: Path, seed: int) -> Corpus:
    """The seeded per-category sample, no split (stratified `ratios` are applied downstream)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            chosen, available = choose(zf.namelist(), ds.categories, ds.per_class, seed, archive.name)
            docs = []
            total = sum(len(v) for v in chosen.values())
            with tqdm(total=total, desc="thucnews", unit="doc") as bar:
                for cat, members in chosen.items():
                    for name in members:
                        docs.append(Doc(_doc_id(name), _text(zf, name, archive.name), cat))
                        bar.update()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise TextbenchError(
            f"{archive}: corrupt or truncated zip ({e.__class__.__name__}: {e}); delete it and run "
            "`textbench download` again"
        ) from None
    return Corpus(docs=docs, stats={"available_per_class": available, "sampled_per_class": {c: len(v) for c, v in chosen.items()}})


def _doc_id(name: str) -> str:
    """`THUCNews/体育/123.txt` -> `体育/123`."""
    cat, file = name.split("/")[-2:]
    return f"{cat}/{file.removesuffix('.txt')}"


def _text(zf: zipfile.ZipFile, name: str, archive: str) -> str:
    raw = zf.read(name)
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TextbenchError(
            f"{archive}: member {name} is not valid UTF-8 (byte {e.start}); fix or remove that file"
        ) from None
    title, _, body = content.strip().partition("\n")
    return f"{title} {body}"
