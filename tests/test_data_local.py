"""Local corpora: every format, encodings, given splits, carved dev, random ratios, duplicates, bad and fuzzed input."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import edit_params, read_params
from pipeline.cli import main
from pipeline.config import Config, config_from_dict
from pipeline.data.prepare import prepare
from pipeline.errors import TextbenchError

ROWS = [{"text": f"document  number {i}\n", "label": "pos" if i % 2 else "neg"} for i in range(40)]


def make_config(project: Path, **ds) -> Config:
    raw = read_params(project)
    raw["datasets"]["mine"] = {"kind": "local", "ratios": [0.5, 0.25, 0.25], **ds}
    return config_from_dict(raw)


def card(project: Path) -> dict:
    return json.loads((project / "data/prepared/mine/card.json").read_text())


def rows(project: Path, split: str) -> list[dict]:
    return pq.read_table(project / f"data/prepared/mine/{split}.parquet").to_pylist()


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_table_formats_with_random_ratios(project, fmt):
    frame = pd.DataFrame(ROWS)
    path = project / f"corpus.{fmt}"
    {
        "csv": lambda: frame.to_csv(path, index=False),
        "tsv": lambda: frame.to_csv(path, sep="\t", index=False),
        "jsonl": lambda: frame.to_json(path, orient="records", lines=True, force_ascii=False),
        "parquet": lambda: frame.to_parquet(path),
    }[fmt]()
    prepare(make_config(project, path=path.name), "mine")
    assert card(project)["totals"] == {"train": 20, "dev": 10, "test": 10}
    assert rows(project, "train")[0]["text"].startswith("document number ")  # whitespace normalised
    assert card(project)["source"][0]["file"] == path.name


def test_split_column_with_carved_dev_and_cross_split_duplicates(project):
    frame = pd.DataFrame([{**r, "split": "test" if i < 10 else "train", "id": f"r{i}"} for i, r in enumerate(ROWS)])
    frame.loc[39, "text"] = frame.loc[0, "text"]  # the same text in train and test
    frame.to_csv(project / "c.csv", index=False)
    prepare(make_config(project, path="c.csv", split_column="split", dev_ratio=0.2), "mine")
    c = card(project)
    assert c["duplicates_removed"] == {"train": 1, "dev": 0, "test": 0}
    assert c["totals"] == {"train": 23, "dev": 6, "test": 10}
    assert {r["id"] for r in rows(project, "test")} == {f"r{i}" for i in range(10)}


def test_files_per_split_and_folder_tree(project):
    pd.DataFrame(ROWS[:30]).to_csv(project / "train.csv", index=False)
    pd.DataFrame(ROWS[30:]).to_csv(project / "test.csv", index=False)
    prepare(make_config(project, files={"train": "train.csv", "test": "test.csv"}), "mine")
    assert card(project)["totals"]["test"] == 10 and card(project)["totals"]["dev"] == 4
    for i, r in enumerate(ROWS[:20] + [{"text": "a rare one", "label": "rare"}]):  # 10 neg, 10 pos, 1 rare
        (project / "tree" / r["label"]).mkdir(parents=True, exist_ok=True)
        (project / "tree" / r["label"] / f"{i}.txt").write_text(r["text"], encoding="utf-8")
    prepare(make_config(project, path="tree", min_docs_per_class=2), "mine")
    assert card(project)["labels"] == ["neg", "pos"] and card(project)["dropped_classes"][0]["label"] == "rare"
    assert rows(project, "train")[0]["id"].startswith("neg/")


@pytest.mark.parametrize(
    "setup, ds, match",
    [
        (
            lambda p: (p / "c.csv").write_text("body,label\nx,y\n"),
            {"path": "c.csv"},
            r"column\(s\) \['text'\] not found",
        ),
        (
            lambda p: (p / "c.csv").write_text("text,label,split\nx,y,val\n"),
            {"path": "c.csv", "split_column": "split"},
            r"row 1: split 'val' is not one of train/dev/test",
        ),
        (lambda p: None, {"path": "nothing.csv"}, r"nothing.csv does not exist"),
        (
            lambda p: (p / "t" / "a").mkdir(parents=True) or (p / "t/a/1.txt").write_bytes(b"\xff"),
            {"path": "t"},
            r"1.txt: not valid utf-8 \(byte 0xff at offset 0\); set datasets.mine.encoding .* datasets.mine.encoding_fallback",
        ),
    ],
)
def test_bad_local_input(project, setup, ds, match):
    setup(project)
    with pytest.raises(TextbenchError, match=match):
        prepare(make_config(project, **ds), "mine")
    assert not (project / "data/prepared/mine").exists()


def tree(project: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (project / "tree" / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / "tree" / rel).write_bytes(data)


TREE = {f"{lb}/{i}.txt": f"{lb} story {i} é".encode() for lb in ("business", "sport") for i in range(8)}


def test_latin1_file_in_a_tree_needs_encoding_and_is_counted(project):
    tree(project, {**TREE, "sport/3.txt": "caf\xe9 result".encode("latin-1")})
    with pytest.raises(
        TextbenchError,
        match=r"tree/sport/3.txt: not valid utf-8 \(byte 0xe9 at offset 3\); "
        r"set datasets.mine.encoding",
    ):
        prepare(make_config(project, path="tree"), "mine")
    prepare(make_config(project, path="tree", encoding_fallback="latin-1"), "mine")
    assert (
        card(project)["reader"].items()
        >= {"files_read": 16, "read_with_fallback": 1, "fallback_files": ["sport/3.txt"]}.items()
    )
    texts = {r["id"]: r["text"] for s in ("train", "dev", "test") for r in rows(project, s)}
    assert texts["sport/3"] == "café result" and texts["sport/4"] == "sport story 4 é"  # UTF-8 files stay UTF-8
    prepare(make_config(project, path="tree", encoding="latin-1"), "mine")  # everything latin-1: no fallback
    assert card(project)["reader"]["read_with_fallback"] == 0


def test_class_files_one_document_per_line(project):
    (project / "c").mkdir()
    (project / "c/rt.pos").write_bytes(
        b"\xef\xbb\xbfgood one\r\n\ngreat\x0cfilm\n"  # BOM, CRLF, blank line
        + "".join(f"fine {i}\n" for i in range(6)).encode()
    )
    (project / "c/rt.neg").write_text("".join(f"bad {i}\n" for i in range(8)), encoding="utf-8")
    prepare(make_config(project, class_files={"pos": "c/rt.pos", "neg": "c/rt.neg"}), "mine")
    c = card(project)
    assert c["counts"]["train"] == {"neg": 4, "pos": 4} and c["empty_docs_dropped"] == 0
    assert c["reader"]["files_read"] == 2 and [s["file"] for s in c["source"]] == ["rt.pos", "rt.neg"]
    texts = {r["id"]: r["text"] for s in ("train", "dev", "test") for r in rows(project, s)}
    assert texts["pos/1"] == "good one" and texts["pos/3"] == "great film" and texts["neg/8"] == "bad 7"


def test_fasttext_lines_as_one_file_and_per_split(project):
    lines = "".join(f"__label__{'pos' if i % 2 else 'neg'} text {i}\n" for i in range(40))
    (project / "c.ft").write_text(lines + "\n", encoding="utf-8")
    prepare(make_config(project, path="c.ft"), "mine")
    assert card(project)["labels"] == ["neg", "pos"] and card(project)["totals"] == {"train": 20, "dev": 10, "test": 10}
    (project / "train.txt").write_text(lines, encoding="utf-8")
    (project / "test.ft").write_text("__label__pos a b\n words __label__neg  after\n", encoding="utf-8")
    prepare(make_config(project, files={"train": "train.txt", "test": "test.ft"}), "mine")
    assert {r["id"]: (r["label"], r["text"]) for r in rows(project, "test")} == {
        "test-1": ("pos", "a b"),
        "test-2": ("neg", "words after"),
    }


@pytest.mark.parametrize(
    "ds, match",
    [
        (
            {"path": "a.csv", "files": {"train": "t.csv", "test": "s.csv"}},
            r"datasets.mine: a local corpus needs exactly",
        ),
        ({}, r"exactly one of path, files, class_files \(given: none\)"),
        ({"files": {"train": "t.csv", "valid": "v.csv", "test": "s.csv"}}, r"unknown split\(s\) \['valid'\]"),
        ({"files": {"train": "t.csv"}}, r"needs at least `train` and `test`"),
        ({"class_files": {"a": "a.txt"}, "format": "csv"}, r"leave `format` at auto"),
        ({"path": "a.csv", "encoding": "latin-9000"}, r"datasets.mine.encoding: 'latin-9000' is not a text encoding"),
        ({"path": "a.csv", "encoding_fallback": "base64"}, r"datasets.mine.encoding_fallback: 'base64' is not a text"),
    ],
)
def test_local_params_checked_at_load(project, ds, match):
    with pytest.raises(TextbenchError, match=match):
        make_config(project, **{"path": "", **ds})


# --- fuzz: every local format, through the CLI entry point -----------------------------------------------------


def cli_prepare(project: Path, ds: dict, monkeypatch, capsys) -> tuple[int, str]:
    """`textbench prepare -d mine -p fuzz.yaml` through pipeline.cli.main: (exit status, stderr)."""
    edit_params(project, lambda raw: raw["datasets"].update(mine={"kind": "local", **ds}), "fuzz.yaml")
    monkeypatch.setattr(sys, "argv", ["textbench", "prepare", "-d", "mine", "-p", "fuzz.yaml"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main()
    return e.value.code, capsys.readouterr().err


def write(project: Path, rel: str, data: bytes | str | pa.Table) -> None:
    path = project / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, pa.Table):
        pq.write_table(data, path)
    else:
        path.write_bytes(data if isinstance(data, bytes) else data.encode())


HOSTILE = {  # name: (files to write, dataset params, what the error line must say)
    "csv wrong columns": ({"c.csv": "body,category\nx,y\n"}, {"path": "c.csv"}, "column(s) ['text', 'label']"),
    "csv no label column": ({"c.csv": "text\nhello\n"}, {"path": "c.csv"}, "column(s) ['label'] not found"),
    "csv empty": ({"c.csv": b""}, {"path": "c.csv"}, "c.csv: cannot be read as csv"),
    "tsv extra fields": ({"c.tsv": "text\tlabel\na\tb\tc\td\n"}, {"path": "c.tsv"}, "c.tsv: rows have more fields"),
    "csv ragged": ({"c.csv": "text,label\na,b\nc,d,e\n"}, {"path": "c.csv"}, "c.csv: cannot be read as csv"),
    "tsv header only": ({"c.tsv": "text\tlabel\n"}, {"path": "c.tsv"}, "0 class(es) left"),
    "jsonl bad line": (
        {"c.jsonl": '{"text": "a", "label": "x"}\n{"text": \n'},
        {"path": "c.jsonl"},
        "c.jsonl: line 2: not JSON",
    ),
    "jsonl array lines": ({"c.jsonl": "[1, 2]\n[3]\n"}, {"path": "c.jsonl"}, "line 1: not a JSON object ([1, 2])"),
    "jsonl null line": ({"c.jsonl": "null\n"}, {"path": "c.jsonl"}, "line 1: not a JSON object (null)"),
    "jsonl mixed types": (
        {"c.jsonl": '{"text": "a", "label": 1}\n{"text": "b", "label": "x"}\n'},
        {"path": "c.jsonl"},
        "c.jsonl: key 'label' holds values of mixed JSON types",
    ),
    "jsonl object label": (
        {"c.jsonl": '{"text": "a", "label": {"x": 1}}\n{"text": "b", "label": {"x": 2}}\n'},
        {"path": "c.jsonl"},
        "column 'label' holds struct",
    ),
    "jsonl empty": ({"c.jsonl": b""}, {"path": "c.jsonl"}, "c.jsonl"),
    "parquet not parquet": ({"c.parquet": b"PAR1 not really"}, {"path": "c.parquet"}, "cannot be read as parquet"),
    "parquet wrong columns": (
        {"c.parquet": pa.table({"a": ["x"], "b": ["y"]})},
        {"path": "c.parquet"},
        "column(s) ['text', 'label'] not found",
    ),
    "parquet binary text": (
        {"c.parquet": pa.table({"text": [b"\xff"] * 4, "label": ["a", "b"] * 2})},
        {"path": "c.parquet"},
        "column 'text' holds binary",
    ),
    "fasttext no label": ({"c.ft": "__label__a fine\njust text\n"}, {"path": "c.ft"}, "c.ft: line 2: no __label__"),
    "fasttext two labels": (
        {"c.txt": "__label__a __label__b text\n"},
        {"path": "c.txt"},
        "c.txt: line 1: 2 labels (a, b)",
    ),
    "fasttext empty label": ({"c.ft": "__label__ text\n"}, {"path": "c.ft"}, "line 1: missing label"),
    "fasttext split column": (
        {"c.ft": "__label__a x\n"},
        {"path": "c.ft", "split_column": "split"},
        "datasets.mine.split_column",
    ),
    "tree without classes": ({"tree/loose.txt": "x"}, {"path": "tree"}, "no <label>/*.txt files"),
    "tree empty": ({"tree/a/notes.md": "x"}, {"path": "tree"}, "no <label>/*.txt files"),
    "tree latin-1 file": (
        {"tree/a/1.txt": "ok", "tree/b/2.txt": b"caf\xe9"},
        {"path": "tree"},
        "set datasets.mine.encoding",
    ),
    "fallback cannot decode": (
        {"tree/a/1.txt": b"\x81\x8d"},
        {"path": "tree", "encoding_fallback": "cp1252"},
        "neither utf-8",
    ),
    "class file is a folder": (
        {"c/a.txt": "x\n", "c/b/x": "y"},
        {"class_files": {"a": "c/a.txt", "b": "c/b"}},
        "c/b does not exist or is not a file",
    ),
    "class files empty": (
        {"c/a.txt": "", "c/b.txt": "\n\n"},
        {"class_files": {"a": "c/a.txt", "b": "c/b.txt"}},
        "0 class(es) left",
    ),
    "split file missing": (
        {"t.csv": "text,label\na,b\n"},
        {"files": {"train": "t.csv", "test": "s.csv"}},
        "s.csv does not exist",
    ),
    "unknown suffix": ({"c.xlsx": "x"}, {"path": "c.xlsx"}, "c.xlsx: unknown format"),
}


def random_cases(seed: int) -> dict[str, tuple[dict, dict, str]]:
    """Random bytes (never valid UTF-8) and random text (never the expected columns) for every format."""
    rng = random.Random(seed)
    noise = rng.randbytes(rng.randrange(0, 400)) + b"\xff"
    pieces = [
        "a",
        "é",
        "中",
        ",",
        "\t",
        '"',
        "'",
        "{",
        "}",
        "[",
        "]",
        ":",
        "\n",
        "\r\n",
        " ",
        "__label__",
        "\x00",
        "\\",
        "1",
        "null",
        "PAR1",
        "\u2028",
    ]
    text = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 300)))
    cases = {}
    for ext in ("csv", "tsv", "jsonl", "parquet", "ft"):
        cases[f"{ext} random bytes"] = ({f"r.{ext}": noise}, {"path": f"r.{ext}"}, f"r.{ext}")
        cases[f"{ext} random text"] = ({f"r.{ext}": text + "\nno label\n"}, {"path": f"r.{ext}"}, f"r.{ext}")
    cases["tree random bytes"] = ({"tree/a/r.txt": noise, "tree/b/s.txt": "ok"}, {"path": "tree"}, "a/r.txt")
    cases["class file random bytes"] = (
        {"r.pos": noise, "r.neg": "ok\n"},
        {"class_files": {"pos": "r.pos", "neg": "r.neg"}},
        "r.pos",
    )
    return cases


@pytest.mark.parametrize("seed", range(5))
def test_fuzz_local_readers_exit_2_with_one_error_line(project, monkeypatch, capsys, seed):
    cases = HOSTILE if seed == 0 else random_cases(seed)
    for name, (files, ds, says) in cases.items():
        for rel, data in files.items():
            write(project, rel, data)
        code, err = cli_prepare(project, ds, monkeypatch, capsys)
        assert code == 2, (name, err)
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, (name, err)
        assert says in err, (name, err)
        assert not (project / "data/prepared").exists() or not any((project / "data/prepared").iterdir()), name
        for top in {project / rel.split("/")[0] for rel in files}:
            shutil.rmtree(top) if top.is_dir() else top.unlink()


def test_failed_prepare_leaves_the_previous_output_unchanged(project, monkeypatch, capsys):
    tree(project, TREE)
    ds = {"path": "tree", "ratios": [0.5, 0.25, 0.25]}  # 16 documents: every split gets some
    assert cli_prepare(project, ds, monkeypatch, capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in (project / "data/prepared/mine").iterdir()}
    tree(project, {"sport/9.txt": b"\xe9t\xe9"})
    code, err = cli_prepare(project, ds, monkeypatch, capsys)
    assert code == 2 and "tree/sport/9.txt: not valid utf-8" in err
    assert {p.name: p.read_bytes() for p in (project / "data/prepared/mine").iterdir()} == before
    assert sorted(p.name for p in (project / "data/prepared").iterdir()) == ["mine"]


def test_non_utf8_corpus_is_one_error_line_in_a_real_process(project):
    tree(project, {"a/1.txt": b"\xe9", "b/1.txt": b"ok"})
    edit_params(project, lambda raw: raw["datasets"].update(mine={"kind": "local", "path": "tree"}))
    r = subprocess.run(
        [sys.executable, "-m", "pipeline", "prepare", "-d", "mine"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: ") and "tree/a/1.txt" in r.stderr and "datasets.mine.encoding" in r.stderr
