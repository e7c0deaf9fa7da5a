"""Local corpora in the layouts users have: a minimal entry under `dvc repro`, folder/archive trees per
split and class (aclImdb, 20 Newsgroups by-date), `classes:`, headerless tables with `columns:`, several
text columns; each wrong layout is one error naming the key and the path."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import REPO, base_params, read_params, write_params
from pipeline.config import config_from_dict
from pipeline.data.prepare import prepare
from pipeline.errors import TextbenchError
from test_data_local import card, cli_prepare, make_config, rows

MINIMAL = {"kind": "local", "language": "en", "path": "corpus.csv"}


@pytest.mark.slow  # git + dvc + three textbench processes
def test_minimal_local_entry_runs_under_dvc_repro(tmp_path: Path) -> None:
    """DVC checks every param a stage declares exists: a stage naming a key the minimal entry lacks
    (max_len, encoder) fails before running, so the stages must declare the whole section."""
    for name in ("dvc.yaml", "pipeline", "flows"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(
            REPO / name,
            tmp_path / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}),
        )
    params = base_params()
    params["datasets"] = {"mini": MINIMAL}
    params["benchmark"]["datasets"] = ["mini"]
    write_params(tmp_path, params)
    rows = "".join(f"word{i % 7} text number {i},{'pos' if i % 2 else 'neg'}\n" for i in range(60))
    (tmp_path / "corpus.csv").write_text("text,label\n" + rows, encoding="utf-8")
    env = {**os.environ, "TEXTBENCH_ROOT": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    run = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "tokenize@mini"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "data/tokenized/mini").is_dir()


def pack(project: Path, container: str, files: dict[str, str]) -> str:
    """`files` (relative name -> text) as a folder or an archive under `project`; the `path` to give."""
    if container == "folder":
        for rel, text in files.items():
            (project / "tree" / rel).parent.mkdir(parents=True, exist_ok=True)
            (project / "tree" / rel).write_text(text, encoding="utf-8")
        return "tree"
    name = f"tree{container}"
    if container == ".zip":
        with zipfile.ZipFile(project / name, "w") as zf:
            for rel, text in files.items():
                zf.writestr(rel, text)
        return name
    with tarfile.open(project / name, "w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return name


def docs(split: str, labels=("neg", "pos"), n: int = 12, root: str = "") -> dict[str, str]:
    return {f"{root}{split}/{lb}/{i}_{lb}.txt": f"{split} {lb} review {i}" for lb in labels for i in range(n)}


CONTAINERS = ["folder", ".tar.gz", ".tgz", ".zip"]
EXTRAS = {"README": "not a document", "imdbEr.txt": "0.1\n", "train/urls_pos.txt": "http://x\n"}


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("root", ["", "aclImdb/"])
def test_split_and_class_folders_read_in_place(project, container, root):
    extras = {root + k: v for k, v in EXTRAS.items()}
    path = pack(project, container, {**docs("train", root=root), **docs("test", n=4, root=root), **extras})
    prepare(make_config(project, path=path), "mine")
    c = card(project)
    assert c["given_split_docs"] == {"test": 8, "train": 24} and c["labels"] == ["neg", "pos"]
    assert c["split_origin"] == {"train": "given", "dev": "carved from train (dev_ratio)", "test": "given"}
    assert c["reader"]["tree_files_ignored"] == 2  # imdbEr.txt and urls_pos.txt are not <split>/<label>/*.txt
    test = rows(project, "test")
    assert {r["id"] for r in test} == {f"test/{lb}/{i}_{lb}" for lb in ("neg", "pos") for i in range(4)}
    assert all(
        r["text"] == "test {} review {}".format(*r["id"].split("/")[1:2], r["id"].split("/")[2][0]) for r in test
    )


@pytest.mark.parametrize("container", CONTAINERS)
def test_train_only_tree_carves_dev_and_test_and_plain_class_tree(project, container):
    path = pack(project, container, docs("train", n=20))
    prepare(make_config(project, path=path), "mine")
    c = card(project)
    assert c["split_origin"]["dev"] == c["split_origin"]["test"] == "carved from train (ratios)"
    assert c["totals"] == {"train": 20, "dev": 10, "test": 10}  # ratios 0.5/0.25/0.25 per class
    shutil.rmtree(project / "tree", ignore_errors=True)
    path = pack(project, container, {f"{lb}/{i}.txt": f"{lb} {i}" for lb in ("a", "b") for i in range(8)})
    prepare(make_config(project, path=path), "mine")
    assert card(project)["labels"] == ["a", "b"] and rows(project, "train")[0]["id"].startswith(("a/", "b/"))


@pytest.mark.parametrize("container", CONTAINERS)
def test_unlabelled_folder_is_an_error_and_classes_choose(project, container):
    path = pack(project, container, {**docs("train", labels=("neg", "pos", "unsup")), **docs("test", n=4)})
    with pytest.raises(
        TextbenchError, match=r"\['train/unsup'\] hold unlabelled .* datasets.mine.classes .*\['neg', 'pos'\]"
    ):
        prepare(make_config(project, path=path), "mine")
    prepare(make_config(project, path=path, classes=["neg", "pos"]), "mine")
    assert card(project)["labels"] == ["neg", "pos"] and card(project)["totals"]["test"] == 8
    with pytest.raises(
        TextbenchError,
        match=rf"datasets.mine.classes: \['neutral'\] not found in \['{project / path}'\] \(classes found: \['neg', 'pos', 'unsup'\]",
    ):
        prepare(make_config(project, path=path, classes=["neg", "neutral"]), "mine")


@pytest.mark.parametrize("sep, suffix", [(",", "csv"), ("\t", "tsv")])
def test_headerless_table_with_columns_and_joined_text_columns(project, sep, suffix):
    """The AG News release: no header; class index, title, description; the text is title + description."""
    lines = [sep.join([str(1 + i % 2), f"Title {i}", f"body {i}"]) for i in range(40)]
    (project / f"ag.{suffix}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds = {"path": f"ag.{suffix}", "columns": ["label", "title", "description"], "text_column": ["title", "description"]}
    prepare(make_config(project, **ds), "mine")
    assert card(project)["labels"] == ["1", "2"] and card(project)["totals"] == {"train": 20, "dev": 10, "test": 10}
    assert all(
        r["text"] == f"Title {r['id'].split('-')[1]} body {r['id'].split('-')[1]}" for r in rows(project, "train")
    )


WRONG = {  # name: (files, dataset params, what the error line must say besides the key)
    "columns count": ({"c.csv": "a,b,c\n"}, {"path": "c.csv", "columns": ["text", "label"]}, "datasets.mine.columns"),
    "columns on jsonl": (
        {"c.jsonl": '{"text": "a", "label": "b"}\n'},
        {"path": "c.jsonl", "columns": ["text"]},
        "datasets.mine.columns",
    ),
    "text column list": (
        {"c.csv": "title,label\na,b\n"},
        {"path": "c.csv", "text_column": ["title", "body"]},
        "['body'] not found",
    ),
    "archive corrupt": (
        {"t.tar.gz": "not gzip"},
        {"path": "t.tar.gz"},
        "cannot be read as an archive",
    ),
    "zip corrupt": ({"t.zip": "PK not zip"}, {"path": "t.zip"}, "cannot be read as an archive"),
    "archive without tree": ({"t.zip": {"loose.txt": "x"}}, {"path": "t.zip"}, "no <label>/*.txt files"),
    "archive traversal": ({"t.tar.gz": {"../train/a/1.txt": "x"}}, {"path": "t.tar.gz"}, "has a '..' component"),
    "unknown class": (
        {"t.zip": {"a/1.txt": "x", "b/1.txt": "y"}},
        {"path": "t.zip", "classes": ["c"]},
        "datasets.mine.classes",
    ),
}


@pytest.mark.parametrize("name", WRONG)
def test_each_wrong_layout_is_one_error_line_naming_key_and_path(project, monkeypatch, capsys, name):
    files, ds, says = WRONG[name]
    for rel, data in files.items():
        if isinstance(data, dict):
            pack(project, Path(rel).name.removeprefix("t"), data)
            (project / f"tree{Path(rel).name.removeprefix('t')}").rename(project / rel)
        else:
            (project / rel).write_text(data, encoding="utf-8")
    code, err = cli_prepare(project, ds, monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert says in err and ("datasets.mine" in err or "traversal" in name) and str(project) in err, err
    assert not (project / "data/prepared/mine").exists()


@pytest.mark.slow
def test_imdb_training_half_prepares_with_the_minimal_entry(corpora, project):
    """The exact entry a user writes for ../shared/corpora/aclImdb-train.tar.gz (measured: ~4 s, 330 MB)."""
    (project.parent / "shared").mkdir(exist_ok=True)
    (project.parent / "shared" / "corpora").unlink(missing_ok=True)
    (project.parent / "shared" / "corpora").symlink_to(corpora)
    raw = read_params(project)
    raw["datasets"]["imdb"] = {"kind": "local", "language": "en", "path": "../shared/corpora/aclImdb-train.tar.gz"}
    prepare(config_from_dict(raw), "imdb")
    c = json.loads((project / "data/prepared/imdb/card.json").read_text())
    assert c["given_split_docs"] == {"train": 25000} and c["labels"] == ["neg", "pos"]
    assert sum(c["totals"].values()) + sum(c["duplicates_removed"].values()) == 25000
    assert (
        c["totals"]["test"] == c["totals"]["dev"] == 1250 and c["split_origin"]["test"] == "carved from train (ratios)"
    )
    ids = [
        i
        for s in ("train", "dev", "test")
        for i in pq.read_table(project / f"data/prepared/imdb/{s}.parquet")["id"].to_pylist()
    ]
    assert len(set(ids)) == len(ids) and ids[0].startswith("train/")
