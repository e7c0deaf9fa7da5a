"""THUCNews (`THUCNews/<category>/<id>.txt`, UTF-8, title line then body) read from the zip.

The real zip holds ~836k members, so nothing is extracted and no text is read before the sample
is chosen: the central directory is streamed (`zipstream`), members are grouped by category from
their NAMES, each name is ranked by sha256("<seed>:<name>") and the `per_class` lowest are kept.
The choice therefore depends only on the seed and the names, never on the member order inside the
zip. Only chosen members are read. Member names are checked first (pipeline.data.members): every
`.txt` member must be `<root>/<category>/<file>.txt`, one root for all.
Text = title + " " + body (whitespace is normalised afterwards anyway).
"""

from __future__ import annotations

import hashlib
import heapq
import re
import struct
import zlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar
from zipfile import BadZipFile

from tqdm import tqdm

from pipeline.config import DatasetConfig
from pipeline.data import zipstream
from pipeline.data.corpus import Corpus, Doc
from pipeline.data.members import Layout, checked
from pipeline.errors import TextbenchError

T = TypeVar("T")
LAYOUT = Layout(
    document=re.compile(r"\.txt$"),
    valid=re.compile(r"(?P<root>[^/]+)/[^/]+/[^/]+\.txt"),
    expected="<root>/<category>/<file>.txt",
)


def choose(
    members: Iterable[tuple[str, T]], categories: list[str], per_class: int, seed: int, archive: str, key: str
) -> tuple[dict[str, list[tuple[str, T]]], dict[str, int]]:
    """(category -> chosen (name, payload) sorted by name, category -> documents available).

    Streams `members` once, keeping per wanted category only its `per_class` best-ranked entries
    (a bounded heap), so memory does not grow with the number of members in the archive.
    """
    wanted = set(categories)
    available: dict[str, int] = defaultdict(int)
    heaps: dict[str, list] = defaultdict(list)
    folders, found = set(), set()
    for name, payload in members:
        parts = name.rstrip("/").split("/")
        if len(parts) < 2:
            continue
        folders.add(parts[-1] if name.endswith("/") else parts[-2])
        cat = parts[-2]
        if not name.endswith(".txt"):
            continue
        found.add(cat)
        if wanted and cat not in wanted:
            continue
        available[cat] += 1
        entry = (-int.from_bytes(_rank(seed, name), "big"), name, payload)
        if not per_class:
            heaps[cat].append(entry)
        elif len(heaps[cat]) < per_class:
            heapq.heappush(heaps[cat], entry)
        else:
            heapq.heappushpop(heaps[cat], entry)
    chosen = {}
    for cat in categories or sorted(available):
        if not available[cat]:
            state = "is empty" if cat in folders else "does not exist"
            raise TextbenchError(
                f"{archive}: category '{cat}' {state} (categories with .txt files: {sorted(found)}); "
                f"fix {key}.categories"
            )
        if per_class > available[cat]:
            raise TextbenchError(
                f"{archive}: category '{cat}' has {available[cat]} documents but per_class is {per_class}; "
                f"lower {key}.per_class to at most {available[cat]} (0 = all)"
            )
        chosen[cat] = sorted(((name, payload) for _, name, payload in heaps[cat]), key=lambda e: e[0])
    return chosen, {c: available[c] for c in chosen}


def _rank(seed: int, name: str) -> bytes:
    return hashlib.sha256(f"{seed}:{name}".encode()).digest()


def read(ds: DatasetConfig, name: str, archive: Path, seed: int) -> Corpus:
    """The seeded per-category sample, no split (stratified `ratios` are applied downstream)."""
    try:
        with open(archive, "rb", buffering=1 << 20) as f:
            members = checked(((m.name, m) for m in zipstream.iter_members(f)), archive.name, LAYOUT)
            chosen, available = choose(members, ds.categories, ds.per_class, seed, archive.name, f"datasets.{name}")
            docs = []
            with tqdm(total=sum(len(v) for v in chosen.values()), desc="thucnews", unit="doc") as bar:
                for cat, picked in chosen.items():
                    for member_name, member in picked:
                        text = _text(zipstream.read_member(f, member), member_name, archive.name)
                        docs.append(Doc(_doc_id(member_name), text, cat))
                        bar.update()
    except (BadZipFile, zlib.error, struct.error, EOFError, OSError) as e:
        raise TextbenchError(
            f"{archive}: corrupt or truncated zip ({e.__class__.__name__}: {e}); delete it and run "
            "`textbench download` again"
        ) from None
    sampled = {c: len(v) for c, v in chosen.items()}
    return Corpus(docs=docs, stats={"available_per_class": available, "sampled_per_class": sampled})


def _doc_id(name: str) -> str:
    """`THUCNews/体育/123.txt` -> `体育/123`."""
    cat, file = name.split("/")[-2:]
    return f"{cat}/{file.removesuffix('.txt')}"


def _text(raw: bytes, name: str, archive: str) -> str:
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TextbenchError(
            f"{archive}: member {name} is not valid UTF-8 (byte {e.start}); fix or remove that file"
        ) from None
    title, _, body = content.strip().partition("\n")
    return f"{title} {body}"
