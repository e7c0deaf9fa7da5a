"""The real archives (../shared/corpora): measured facts of Reuters-21578 and the THUCNews sample."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.data.download import download
from pipeline.data.prepare import prepare
from pipeline.data.reuters import iter_documents
from pipeline.io import sha256_file

pytestmark = pytest.mark.corpora

REUTERS_DROPPED = {  # single-label ModApte classes with < 10 documents (train+dev+test), as measured
    "coconut": 1, "cpu": 4, "dlr": 6, "groundnut": 2, "hog": 1, "instal-debt": 6, "inventories": 3, "jet": 3,
    "l-cattle": 1, "lead": 8, "meal-feed": 7, "naphtha": 1, "nickel": 4, "oilseed": 9, "platinum": 3, "potato": 5,
    "propane": 1, "rand": 1, "rice": 1, "silver": 4, "stg": 1, "tea": 5, "wool": 1, "yen": 6,
}


@pytest.fixture
def cfg(project, corpora, monkeypatch):
    monkeypatch.setenv("TEXTBENCH_MIRROR", str(corpora))
    return load_config(project / "params.yaml")


def test_reuters_parse_counts(corpora):
    docs = list(iter_documents(corpora / "reuters21578.tar.gz"))
    assert len(docs) == 21578 and len({d["newid"] for d in docs}) == 21578
    modapte = Counter(d["lewissplit"] for d in docs if d["topics_attr"] == "YES" and d["lewissplit"] != "NOT-USED")
    assert modapte == {"TRAIN": 9603, "TEST": 3299}
    assert sum(not d["body"] for d in docs) == 2535
    assert not any("&lt;" in d["body"] or "\x03" in d["body"] for d in docs)


def test_reuters_prepare_matches_card_and_is_byte_identical(cfg, project):
    download(cfg, "reuters")
    out = prepare(cfg, "reuters")
    card = json.loads((out / "card.json").read_text())
    assert card["reader"] == {"parsed_docs": 21578, "modapte": {"train": 9603, "test": 3299}, "not_single_label": 3769}
    assert {d["label"]: d["docs"] for d in card["dropped_classes"]} == REUTERS_DROPPED
    assert card["num_labels"] == 42 and card["totals"] == {"train": 5807, "dev": 647, "test": 2537}
    assert card["empty_docs_dropped"] == 48 and card["duplicates_removed"] == {"train": 9, "dev": 1, "test": 0}
    assert card["counts"]["test"]["earn"] == 1076 and card["classes_missing_from_split"]["dev"] == ["fuel"]
    for split in ("train", "dev", "test"):
        labels = Counter(pq.read_table(out / f"{split}.parquet", columns=["label"]).column("label").to_pylist())
        assert dict(labels) == card["counts"][split]
    first = {p.name: sha256_file(p) for p in out.glob("*")}
    assert {p.name: sha256_file(p) for p in prepare(cfg, "reuters").glob("*")} == first


def test_thucnews_sample_per_class_and_split(cfg, project):
    download(cfg, "thucnews")
    out = prepare(cfg, "thucnews")
    card = json.loads((out / "card.json").read_text())
    assert card["reader"]["available_per_class"]["游戏"] == 1044 and card["reader"]["available_per_class"]["教育"] == 948
    assert all(n == 940 for n in card["reader"]["sampled_per_class"].values())
    assert card["counts"]["train"] == {c: 752 for c in card["labels"]} and card["totals"] == {"train": 7520, "dev": 940, "test": 940}
    test = pq.read_table(out / "test.parquet").to_pylist()
    assert all(r["id"].startswith(r["label"] + "/") and r["text"] for r in test)
