"""THUCNews prepare on generated THUCNews-layout zips: seeded sampling, splits, clear errors."""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import read_params
from pipeline.config import Config, config_from_dict
from pipeline.data.members import shown
from pipeline.data.prepare import prepare
from pipeline.errors import TextbenchError
from pipeline.io import sha256_file

CATS = {"体育": 30, "财经": 25, "科技": 20}


def make_zip(
    path: Path, cats: dict[str, int] = CATS, shuffle: int | None = None, extra: dict[str, bytes] | None = None
) -> Path:
    members = [
        (f"THUCNews/{c}/{i}.txt", f"{c}标题{i}\n{c}正文 第{i}篇\n".encode()) for c, n in cats.items() for i in range(n)
    ]
    members += list((extra or {}).items())
    if shuffle is not None:
        random.Random(shuffle).shuffle(members)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def make_config(project: Path, **ds) -> Config:
    raw = read_params(project)
    raw["datasets"]["thucnews"].update({"categories": list(CATS), "per_class": 20, "ratios": [0.8, 0.1, 0.1], **ds})
    return config_from_dict(raw)


def zip_path(project: Path) -> Path:
    return project / "data/raw/thucnews/THUCNews-sample.zip"


def test_sample_split_and_text(project):
    make_zip(zip_path(project))
    out = prepare(make_config(project), "thucnews")
    card = json.loads((out / "card.json").read_text())
    assert card["labels"] == sorted(CATS)
    assert card["counts"]["train"] == {c: 16 for c in CATS} and card["counts"]["test"] == {c: 2 for c in CATS}
    assert card["reader"]["available_per_class"] == CATS
    rows = pq.read_table(out / "train.parquet").to_pylist()
    row = rows[0]
    cat, num = row["id"].split("/")
    assert row["text"] == f"{cat}标题{num} {cat}正文 第{num}篇" and row["label"] == cat


def test_sample_does_not_depend_on_member_order(project):
    make_zip(zip_path(project))
    first = {p.name: sha256_file(p) for p in sorted(prepare(make_config(project), "thucnews").glob("*.parquet"))}
    make_zip(zip_path(project), shuffle=7)
    again = {p.name: sha256_file(p) for p in sorted(prepare(make_config(project), "thucnews").glob("*.parquet"))}
    assert again == first
    other_seed = config_from_dict({**make_config(project).model_dump(), "seed": 1})

    def ids() -> set[str]:
        return {
            r["id"]
            for s in ("train", "dev", "test")
            for r in pq.read_table(project / f"data/prepared/thucnews/{s}.parquet").to_pylist()
        }

    before = ids()
    prepare(other_seed, "thucnews")
    assert ids() != before


@pytest.mark.parametrize(
    "ds, extra, match",
    [
        ({"categories": ["体育", "汽车"]}, None, r"category '汽车' does not exist"),
        ({"categories": ["体育", "空"]}, {"THUCNews/空/": b""}, r"category '空' is empty"),
        ({"per_class": 26}, None, r"category '财经' has 25 documents but per_class is 26; lower .* to at most 25"),
        (
            {"per_class": 0},
            {"THUCNews/科技/bad.txt": b"\xff\xfe bad"},
            r"member THUCNews/科技/bad.txt is not valid UTF-8",
        ),
    ],
)
def test_bad_input_is_one_clear_error_and_no_output(project, ds, extra, match):
    make_zip(zip_path(project), extra=extra)
    with pytest.raises(TextbenchError, match=match):
        prepare(make_config(project, **ds), "thucnews")
    assert not (project / "data/prepared/thucnews").exists()


def test_corrupt_and_truncated_zip(project):
    path = make_zip(zip_path(project))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TextbenchError, match="corrupt or truncated zip"):
        prepare(make_config(project), "thucnews")
    flipped = bytearray(data)
    flipped[200] ^= 0xFF  # inside the first member's compressed data: CRC or inflate fails
    path.write_bytes(bytes(flipped))
    with pytest.raises(TextbenchError, match="corrupt or truncated zip|not valid UTF-8"):
        prepare(make_config(project, per_class=0), "thucnews")
    assert not (project / "data/prepared/thucnews").exists()


def test_zipstream_matches_zipfile_on_zip64_stored_and_deflated(tmp_path, monkeypatch):
    from pipeline.data import zipstream

    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 3)  # makes zipfile write the zip64 end records
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("THUCNews/体育/", b"")
        for i in range(6):
            info = zipfile.ZipInfo(f"THUCNews/体育/{i}.txt")
            info.compress_type = zipfile.ZIP_DEFLATED if i % 2 else zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=i == 3) as w:
                w.write(f"标题{i}\n正文".encode() * (i + 1))
    assert b"PK\x06\x06" in path.read_bytes()  # the zip64 end record is really there
    with open(path, "rb") as f:
        members = list(zipstream.iter_members(f))
        assert [m.name for m in members] == zipfile.ZipFile(path).namelist()
        got = {m.name: zipstream.read_member(f, m) for m in members}
    assert got == {n: zipfile.ZipFile(path).read(n) for n in got}


BAD_UTF8 = ("~~BAD~~~", b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8")  # a placeholder in the name, then its raw bytes


def break_utf8(path: Path) -> Path:
    """Swap BAD_UTF8's placeholder for bytes that are not UTF-8 (local header and central directory)."""
    data = path.read_bytes()
    assert data.count(BAD_UTF8[0].encode()) == 2
    path.write_bytes(data.replace(BAD_UTF8[0].encode(), BAD_UTF8[1]))
    return path


@pytest.mark.parametrize(
    "name, why",
    [
        ("THUCNews/../../x.txt", "has a '..' component"),
        ("/abs/体育/evil.txt", "has an absolute path"),
        ("../../体育/y.txt", "has a '..' component"),
        ("C:\\体育\\z.txt", "has an absolute path"),
        ("THUCNews/体育/3.txt", "appears twice"),
        ("THUCNews/体育/sub/4.txt", r"is not where the corpus keeps its documents \(<root>/<category>/<file>.txt\)"),
        ("体育/5.txt", r"is not where the corpus keeps its documents"),
        ("Other/体育/6.txt", "is under a different root folder than THUCNews/"),
        (f"THUCNews/体育/{BAD_UTF8[0]}.txt", "has a name that is not valid UTF-8"),
    ],
)
@pytest.mark.filterwarnings("ignore:Duplicate name")  # zipfile's, for the copy written on purpose
def test_hostile_member_is_one_error_naming_it(project, name, why):
    """Before: these became training documents, and with `categories: []` `..` and `/abs` became classes."""
    path = make_zip(zip_path(project), extra={name: "体育标题\n恶意正文\n".encode()})
    if BAD_UTF8[0] in name:
        break_utf8(path)
        name = name.replace(BAD_UTF8[0], BAD_UTF8[1].decode("utf-8", "surrogateescape"))
    with pytest.raises(TextbenchError, match=why) as e:
        prepare(make_config(project, categories=[], per_class=0), "thucnews")
    assert f"member {shown(name)} " in str(e.value) and "\n" not in str(e.value)
    assert not (project / "data/prepared/thucnews").exists()


@pytest.mark.parametrize(
    "ds, match",
    [
        (
            {"categories": ["体育"]},
            r"dataset 'thucnews': 1 class\(es\) left after filtering \(\['体育'\]\); a classifier "
            r"needs at least 2: use a corpus \(or datasets.thucnews.categories\) with 2 or more",
        ),
        (
            {"min_docs_per_class": 26},
            r"1 class\(es\) left .* lower datasets.thucnews.min_docs_per_class \(it dropped "
            r"\['科技', '财经'\]\)",
        ),
        (
            {"per_class": 5, "ratios": [0.9, 0.05, 0.05]},
            r"no documents in the dev/test split \(documents per split: "
            r"\{'train': 15, 'dev': 0, 'test': 0\}\).* raise datasets.thucnews.ratios",
        ),
    ],
)
def test_one_class_or_an_empty_split_is_refused(project, ds, match):
    """Before: a single-class corpus trained to accuracy 1.0; empty dev/test splits failed later."""
    make_zip(zip_path(project))
    with pytest.raises(TextbenchError, match=match):
        prepare(make_config(project, **{"per_class": 0, **ds}), "thucnews")
    assert not (project / "data/prepared/thucnews").exists()
