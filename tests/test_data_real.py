"""The real corpora (../shared/corpora): measured facts of Reuters-21578, the THUCNews sample and MR."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest

from conftest import read_params
from pipeline.config import config_from_dict, load_config
from pipeline.data.download import download
from pipeline.data.prepare import prepare
from pipeline.data.reuters import iter_documents
from pipeline.io import sha256_file

pytestmark = pytest.mark.corpora

REUTERS_DROPPED = {  # single-label ModApte classes with < 10 documents (train+dev+test), as measured
    "coconut": 1,
    "cpu": 4,
    "dlr": 6,
    "groundnut": 2,
    "hog": 1,
    "instal-debt": 6,
    "inventories": 3,
    "jet": 3,
    "l-cattle": 1,
    "lead": 8,
    "meal-feed": 7,
    "naphtha": 1,
    "nickel": 4,
    "oilseed": 9,
    "platinum": 3,
    "potato": 5,
    "propane": 1,
    "rand": 1,
    "rice": 1,
    "silver": 4,
    "stg": 1,
    "tea": 5,
    "wool": 1,
    "yen": 6,
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


def test_reuters_multi_is_modapte_90(cfg, project):
    download(cfg, "reuters_multi")
    out = prepare(cfg, "reuters_multi")
    card = json.loads((out / "card.json").read_text())
    assert card["label_mode"] == "multi" and card["num_labels"] == 90 and card["reader"]["kept_topics"] == 90
    assert card["reader"]["modapte_with_kept_topic"] == {"train": 7770, "test": 3019}
    assert card["given_split_docs"] == {"test": 3005, "train": 7723}  # documents with text
    assert card["totals"]["test"] == 3005 - card["duplicates_removed"]["test"]
    assert card["classes_missing_from_split"]["train"] == []  # the dev carve leaves every topic a train document
    labels = pq.read_table(out / "test.parquet", columns=["labels"]).column("labels").to_pylist()
    assert all(labels) and max(map(len, labels)) > 1 and set(card["labels"]) == {x for s in labels for x in s}


def test_thucnews_sample_per_class_and_split(cfg, project):
    download(cfg, "thucnews")
    out = prepare(cfg, "thucnews")
    card = json.loads((out / "card.json").read_text())
    assert (
        card["reader"]["available_per_class"]["游戏"] == 1044 and card["reader"]["available_per_class"]["教育"] == 948
    )
    assert all(n == 940 for n in card["reader"]["sampled_per_class"].values())
    assert card["counts"]["train"] == {c: 752 for c in card["labels"]} and card["totals"] == {
        "train": 7520,
        "dev": 940,
        "test": 940,
    }
    test = pq.read_table(out / "test.parquet").to_pylist()
    assert all(r["id"].startswith(r["label"] + "/") and r["text"] for r in test)


def test_mr_class_files_prepare_without_conversion(project, corpora):
    mr = corpora / "mr"
    if not (mr / "rt-polarity.pos").is_file():
        pytest.skip(f"MR polarity files not found at {mr}")
    raw = read_params(project)
    raw["datasets"]["mr"] = {
        "kind": "local",
        "ratios": [0.8, 0.1, 0.1],
        "class_files": {"pos": str(mr / "rt-polarity.pos"), "neg": str(mr / "rt-polarity.neg")},
    }
    out = prepare(config_from_dict(raw), "mr")
    card = json.loads((out / "card.json").read_text())
    assert card["reader"].items() >= {"files_read": 2, "read_with_fallback": 0, "fallback_files": []}.items()
    assert card["labels"] == ["neg", "pos"] and card["empty_docs_dropped"] == 0
    assert card["counts"] == {
        "train": {"neg": 4265, "pos": 4265},
        "dev": {"neg": 533, "pos": 533},
        "test": {"neg": 533, "pos": 533},
    }  # all 5,331 + 5,331 lines, no duplicates
    assert [s["sha256"][:8] for s in card["source"]] == ["3d5adb27", "e5c8fb73"]
    docs = {
        r["id"]: r["text"] for s in ("train", "dev", "test") for r in pq.read_table(out / f"{s}.parquet").to_pylist()
    }
    assert docs["pos/1"].startswith('the rock is destined to be the 21st century\'s new " conan "')
