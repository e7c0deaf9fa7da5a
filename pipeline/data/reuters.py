"""Reuters-21578 (Distribution 1.0) read straight from the tarball, one SGML member at a time.

Each `<REUTERS ...>...</REUTERS>` block becomes one document: id = NEWID, text = TITLE + BODY
(the title alone when there is no BODY; UNPROC documents have neither and count as empty),
`topics` = the TOPICS <D> list. Files are latin-1; entities (`&lt;`, `&#3;`) are decoded and
control characters removed. A block without its closing tag or without NEWID/LEWISSPLIT/TOPICS
attributes is an error naming the file and NEWID: the ModApte numbers depend on every document,
so a damaged archive must be replaced rather than silently thinned.
"""

from __future__ import annotations

import html
import re
import tarfile
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

from pipeline.config import DatasetConfig
from pipeline.data.corpus import Corpus, Doc
from pipeline.data.members import Layout, checked, read_capped
from pipeline.errors import TextbenchError

SGML_FILES = tuple(f"reut2-{i:03d}.sgm" for i in range(22))
LAYOUT = Layout(
    document=re.compile(r"(^|/)reut2-\d+\.sgm$"),
    valid=re.compile(r"(?:(?P<root>reuters21578)/)?reut2-\d{3}\.sgm"),
    expected="reut2-NNN.sgm at the archive root or in reuters21578/",
)
_OPEN = re.compile(r"<REUTERS\b([^>]*)>")
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def parse_sgml(text: str, source: str) -> Iterator[dict]:
    """Yield {newid, lewissplit, topics_attr, topics, title, body} for each document of one file."""
    opens = list(_OPEN.finditer(text))
    for i, m in enumerate(opens):
        attrs = dict(_ATTR.findall(m.group(1)))
        newid = attrs.get("NEWID", "?")
        end = opens[i + 1].start() if i + 1 < len(opens) else len(text)
        close = text.find("</REUTERS>", m.end(), end)
        missing = [k for k in ("NEWID", "LEWISSPLIT", "TOPICS") if k not in attrs]
        if close < 0 or missing:
            why = f"missing attribute(s) {missing}" if missing else "no closing </REUTERS>"
            raise TextbenchError(
                f"{source}: malformed document NEWID={newid} ({why}); the archive is damaged: download it again"
            )
        block = text[m.end() : close]
        topics = _field(block, "TOPICS")
        yield {
            "newid": newid,
            "lewissplit": attrs["LEWISSPLIT"],
            "topics_attr": attrs["TOPICS"],
            "topics": [clean(t) for t in re.findall(r"<D>(.*?)</D>", topics, re.S)],
            "title": clean(_field(block, "TITLE")),
            "body": clean(_field(block, "BODY")),
        }


def clean(s: str) -> str:
    """Decode SGML entities, drop control characters, collapse whitespace."""
    return " ".join(_CONTROL.sub("", html.unescape(s)).split())


def _field(block: str, tag: str) -> str:
    m = re.search(rf"<{tag}>(.*?)</{tag}>", block, re.S)
    return m.group(1) if m else ""


def iter_documents(archive: Path) -> Iterator[dict]:
    """Stream the 22 reut2-*.sgm members of the tarball (no extraction) and yield their documents;
    every member name is checked first (pipeline.data.members)."""
    seen = set()
    try:
        with tarfile.open(archive, "r:*") as tar, tqdm(total=len(SGML_FILES), desc="reuters", unit="file") as bar:
            for path, member in checked(((m.name, m) for m in tar), archive.name, LAYOUT):
                name = path.rpartition("/")[2]
                if name not in SGML_FILES or not member.isfile():
                    continue
                raw = read_capped(tar.extractfile(member), archive.name, path)
                seen.add(name)
                yield from parse_sgml(raw.decode("latin-1"), f"{archive.name}:{name}")
                bar.update()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise TextbenchError(
            f"{archive}: unreadable or truncated archive ({e.__class__.__name__}: {e}); delete it and run "
            "`textbench download` again"
        ) from None
    if missing := sorted(set(SGML_FILES) - seen):
        raise TextbenchError(
            f"{archive}: lacks {len(missing)} of the 22 SGML files ({missing[:3]}...); download it again"
        )


def read(ds: DatasetConfig, archive: Path) -> Corpus:
    """ModApte documents (or all, for `random`): with exactly one topic (`single`), or with their
    topic sets (`multi`, see `_multi`)."""
    docs: list[Doc] = []
    stats: dict = {"parsed_docs": 0, "modapte": {"train": 0, "test": 0}}
    stats["not_single_label" if ds.label_mode == "single" else "no_topic"] = 0
    for d in iter_documents(archive):
        stats["parsed_docs"] += 1
        split = {"TRAIN": "train", "TEST": "test"}.get(d["lewissplit"]) if d["topics_attr"] == "YES" else None
        if split:
            stats["modapte"][split] += 1
        if ds.split == "modapte" and split is None:
            continue
        text = f"{d['title']} {d['body']}".strip()
        split = split if ds.split == "modapte" else None
        if ds.label_mode == "multi" and d["topics"]:
            docs.append(Doc.multi(d["newid"], text, d["topics"], split, topics=d["topics"]))
        elif ds.label_mode == "single" and len(d["topics"]) == 1:
            docs.append(Doc(d["newid"], text, d["topics"][0], split, {"topics": d["topics"]}))
        else:
            stats["not_single_label" if ds.label_mode == "single" else "no_topic"] += 1
    if ds.label_mode == "multi" and ds.split == "modapte":
        docs = _multi(docs, ds.min_docs_per_class, stats)
    return Corpus(docs=docs, stats=stats, extras={"topics": pa.list_(pa.string())})


def _multi(docs: list[Doc], minimum: int, stats: dict) -> list[Doc]:
    """ModApte-N: keep the topics with >= `minimum` train and >= 1 test document (counted on every
    ModApte document, text or not: `minimum` 1 gives the standard 90), narrow each document's set
    to them and drop (count) the documents left with none."""
    per_split = {s: Counter(t for d in docs if d.split == s for t in d.labels) for s in ("train", "test")}
    kept = {t for t, n in per_split["train"].items() if n >= minimum and per_split["test"][t] >= 1}
    docs = [d for d in docs if d.keep_labels(kept)]
    stats |= {
        "kept_topics": len(kept),
        "topic_rule": f">= {minimum} ModApte train and >= 1 test document",
        "no_kept_topic": sum(stats["modapte"].values()) - stats["no_topic"] - len(docs),
        "modapte_with_kept_topic": {s: sum(d.split == s for d in docs) for s in ("train", "test")},
    }
    return docs
