"""Reuters prepare on a tiny generated SGML tarball: parsing, ModApte, filtering, errors, determinism."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import read_params
from pipeline.config import Config, config_from_dict
from pipeline.data.members import shown
from pipeline.data.prepare import prepare
from pipeline.data.reuters import SGML_FILES, parse_sgml
from pipeline.errors import TextbenchError
from pipeline.io import sha256_file


def sgml_doc(
    newid: int,
    topics: list[str],
    split: str = "TRAIN",
    has_topics: str = "YES",
    title: str = "TITLE {n}",
    body: str | None = "Body of &lt;doc&gt; {n} &amp; more\n&#3;",
) -> str:
    d = "".join(f"<D>{t}</D>" for t in topics)
    text = f"<TITLE>{title.format(n=newid)}</TITLE>" + (f"<BODY>{body.format(n=newid)}</BODY>" if body else "")
    return (
        f'<REUTERS TOPICS="{has_topics}" LEWISSPLIT="{split}" CGISPLIT="X" OLDID="1" NEWID="{newid}">\n'
        f"<DATE>1987</DATE>\n<TOPICS>{d}</TOPICS>\n<TEXT>&#2;\n{text}</TEXT>\n</REUTERS>\n"
    )


def corpus_docs() -> list[str]:
    """40 'earn' + 30 'acq' (ModApte), 3 'rare', multi-label, no-topics, untitled-empty and a duplicate."""
    docs, n = [], 0
    for label, count in (("earn", 40), ("acq", 30), ("rare", 3)):
        for i in range(count):
            n += 1
            docs.append(sgml_doc(n, [label], "TEST" if i % 4 == 0 else "TRAIN"))
    docs.append(sgml_doc(n + 1, ["earn", "acq"]))  # multi-label: dropped
    docs.append(sgml_doc(n + 2, ["earn"], has_topics="NO"))  # not ModApte
    docs.append(sgml_doc(n + 3, ["earn"], title="", body=None))  # empty text
    docs.append(sgml_doc(n + 4, ["earn"], "TEST", title="TITLE 2", body="Body of &lt;doc&gt; 2 &amp; more"))
    docs.append(sgml_doc(n + 5, ["acq"], title="Only a title é", body=None))
    return docs


def sgml_file(docs: list[str]) -> bytes:
    return ('<!DOCTYPE lewis SYSTEM "lewis.dtd">\n' + "".join(docs)).encode("latin-1")


def sgml_members(docs: list[str], files: tuple[str, ...] = SGML_FILES, prefix: str = "") -> list[tuple[str, bytes]]:
    per = -(-len(docs) // len(files))
    return [(prefix + name, sgml_file(docs[i * per : (i + 1) * per])) for i, name in enumerate(files)]


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A gzipped tar holding exactly these (name, bytes) members; names are kept as given (GNU format
    writes a surrogate-escaped name as its raw, non-UTF-8 bytes)."""
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def make_tarball(
    path: Path,
    docs: list[str],
    files: tuple[str, ...] = SGML_FILES,
    extra: list[tuple[str, bytes]] = (),
    prefix: str = "",
) -> Path:
    return write_tar(path, sgml_members(docs, files, prefix) + list(extra))


def make_config(project: Path, **ds) -> Config:
    raw = read_params(project)
    raw["datasets"]["reuters"].update(ds)
    return config_from_dict(raw)


@pytest.fixture
def archive(project: Path) -> Path:
    (project / "data/raw/reuters").mkdir(parents=True)
    return make_tarball(project / "data/raw/reuters/reuters21578.tar.gz", corpus_docs())


def read_split(project: Path, split: str) -> list[dict]:
    return pq.read_table(project / f"data/prepared/reuters/{split}.parquet").to_pylist()


def test_parse_decodes_entities_and_strips_controls():
    (doc,) = parse_sgml(sgml_doc(7, ["earn"]), "x.sgm")
    assert doc["newid"] == "7" and doc["topics"] == ["earn"]
    assert doc["body"] == "Body of <doc> 7 & more" and doc["title"] == "TITLE 7"


def test_modapte_single_label_card_and_contract(project, archive):
    out = prepare(make_config(project, min_docs_per_class=5), "reuters")
    card = json.loads((out / "card.json").read_text())
    assert card["reader"]["parsed_docs"] == 78
    assert card["reader"]["modapte"] == {"train": 57, "test": 20}  # TOPICS="YES" and TRAIN/TEST
    assert card["reader"]["not_single_label"] == 1 and card["empty_docs_dropped"] == 1
    assert card["labels"] == ["acq", "earn"]
    assert card["dropped_classes"] == [
        {"label": "rare", "docs": 3, "reason": "fewer than min_docs_per_class=5 documents"}
    ]
    assert card["duplicates_removed"] == {"train": 1, "dev": 0, "test": 0}  # doc 2's copy in test wins
    assert card["totals"]["test"] == 19 and sum(card["totals"].values()) == 71
    assert card["source"][0]["sha256"] == sha256_file(archive)
    assert card["params"]["datasets.reuters"]["min_docs_per_class"] == 5
    train = read_split(project, "train")
    assert set(train[0]) == {"id", "text", "label", "topics"}
    assert "Only a title é" in {r["text"] for r in train + read_split(project, "dev")}
    texts = {s: {r["text"] for r in read_split(project, s)} for s in ("train", "dev", "test")}
    assert not (texts["train"] & texts["test"]) and not (texts["train"] & texts["dev"])
    for split in ("train", "dev", "test"):
        got = {lb: sum(r["label"] == lb for r in read_split(project, split)) for lb in card["labels"]}
        assert {k: v for k, v in got.items() if v} == card["counts"][split]


def test_random_split_is_stratified_and_byte_identical(project, archive):
    cfg = make_config(project, split="random", ratios=[0.6, 0.2, 0.2], min_docs_per_class=1)
    out = prepare(cfg, "reuters")
    first = {p.name: sha256_file(p) for p in sorted(out.iterdir())}
    card = json.loads((out / "card.json").read_text())
    assert card["counts"]["test"]["earn"] == round(0.2 * 42) and card["counts"]["dev"]["acq"] == round(0.2 * 31)
    assert {p.name: sha256_file(p) for p in sorted(prepare(cfg, "reuters").iterdir())} == first


def test_malformed_document_names_file_and_newid(project):
    (project / "data/raw/reuters").mkdir(parents=True)
    docs = corpus_docs()
    docs[5] = docs[5].replace("</REUTERS>", "")
    make_tarball(project / "data/raw/reuters/reuters21578.tar.gz", docs)
    with pytest.raises(TextbenchError, match=r"reut2-001.sgm: malformed document NEWID=6 \(no closing </REUTERS>\)"):
        prepare(make_config(project), "reuters")
    assert not (project / "data/prepared/reuters").exists()


def test_truncated_archive_is_one_clear_error_and_keeps_old_output(project, archive):
    prepare(make_config(project), "reuters")
    before = sha256_file(project / "data/prepared/reuters/train.parquet")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(TextbenchError, match="unreadable or truncated archive"):
        prepare(make_config(project), "reuters")
    assert sha256_file(project / "data/prepared/reuters/train.parquet") == before
    assert [p.name for p in (project / "data/prepared").iterdir()] == ["reuters"]


def test_archive_missing_sgml_files(project):
    (project / "data/raw/reuters").mkdir(parents=True)
    make_tarball(project / "data/raw/reuters/reuters21578.tar.gz", corpus_docs(), SGML_FILES[:3])
    with pytest.raises(TextbenchError, match="lacks 19 of the 22 SGML files"):
        prepare(make_config(project), "reuters")


def test_missing_archive_says_to_download(project):
    with pytest.raises(TextbenchError, match="run `textbench download --dataset reuters` first"):
        prepare(make_config(project), "reuters")


EXTRA_DOCS = sgml_file([sgml_doc(1000 + i, ["earn"], title="EXTRA {n}") for i in range(5)])


@pytest.mark.parametrize(
    "name, why",
    [
        ("../../reut2-000.sgm", "has a '..' component"),
        ("/abs/reut2-001.sgm", "has an absolute path"),
        ("reut2-002.sgm", "appears twice"),
        ("./reut2-003.sgm", "appears twice"),  # the same member once `./` is dropped
        ("other/reut2-004.sgm", r"is not where the corpus keeps its documents \(reut2-NNN.sgm at the archive root"),
        ("reuters21578/reut2-005.sgm", "is under a different root folder than reut2-000.sgm"),
        ("notes/\udcff.txt", "has a name that is not valid UTF-8"),
    ],
)
def test_hostile_member_is_one_error_naming_it(project, name, why):
    """Before: each of these was parsed as extra SGML (23,578 documents from the real archive, not 21,578)."""
    (project / "data/raw/reuters").mkdir(parents=True)
    make_tarball(project / "data/raw/reuters/reuters21578.tar.gz", corpus_docs(), extra=[(name, EXTRA_DOCS)])
    with pytest.raises(TextbenchError, match=why) as e:
        prepare(make_config(project), "reuters")
    assert f"member {shown(name)} " in str(e.value) and "\n" not in str(e.value)
    assert not (project / "data/prepared/reuters").exists()


@pytest.mark.parametrize("prefix", ["reuters21578/", "./"])
def test_expected_folder_and_dot_prefix_read_the_same_documents(project, prefix):
    (project / "data/raw/reuters").mkdir(parents=True)
    path = project / "data/raw/reuters/reuters21578.tar.gz"
    make_tarball(path, corpus_docs(), extra=[("lewis.dtd", b"<!ELEMENT x>"), ("docs/readme.txt", b"x")])
    plain = prepare(make_config(project), "reuters")
    before = {s: sha256_file(plain / f"{s}.parquet") for s in ("train", "dev", "test")}
    make_tarball(path, corpus_docs(), prefix=prefix, extra=[(prefix + "lewis.dtd", b"<!ELEMENT x>")])
    out = prepare(make_config(project), "reuters")
    assert {s: sha256_file(out / f"{s}.parquet") for s in before} == before
