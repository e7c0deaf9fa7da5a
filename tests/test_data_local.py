"""Local corpora: every format, given splits, carved dev, random ratios, duplicates, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.config import Config, config_from_dict
from pipeline.data.prepare import prepare
from pipeline.errors import TextbenchError

ROWS = [{"text": f"document  number {i}\n", "label": "pos" if i % 2 else "neg"} for i in range(40)]


def make_config(project: Path, **ds) -> Config:
    raw = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
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
    {"csv": lambda: frame.to_csv(path, index=False), "tsv": lambda: frame.to_csv(path, sep="\t", index=False),
     "jsonl": lambda: frame.to_json(path, orient="records", lines=True, force_ascii=False),
     "parquet": lambda: frame.to_parquet(path)}[fmt]()
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


@pytest.mark.parametrize("setup, ds, match", [
    (lambda p: (p / "c.csv").write_text("body,label\nx,y\n"), {"path": "c.csv"}, r"column\(s\) \['text'\] not found"),
    (lambda p: (p / "c.csv").write_text("text,label,split\nx,y,val\n"), {"path": "c.csv", "split_column": "split"},
     r"row 1: split 'val' is not one of train/dev/test"),
    (lambda p: None, {"path": "nothing.csv"}, r"nothing.csv does not exist"),
    (lambda p: (p / "t" / "a").mkdir(parents=True) or (p / "t/a/1.txt").write_bytes(b"\xff"), {"path": "t"},
     r"1.txt: not valid UTF-8"),
])
def test_bad_local_input(project, setup, ds, match):
    setup(project)
    with pytest.raises(TextbenchError, match=match):
        prepare(make_config(project, **ds), "mine")
    assert not (project / "data/prepared/mine").exists()
