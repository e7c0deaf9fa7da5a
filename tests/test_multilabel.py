"""label_mode multi: Reuters ModApte-N and local label sets → prepared label sets."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.config import config_from_dict
from pipeline.data.prepare import prepare
from pipeline.errors import TextbenchError
from test_data_reuters import corpus_docs, make_config, make_tarball, sgml_doc


def prepared(project: Path, name: str, split: str) -> list[dict]:
    return pq.read_table(project / f"data/prepared/{name}/{split}.parquet").to_pylist()


def test_reuters_modapte_multi_keeps_topic_sets_with_train_and_test_documents(project):
    (project / "data/raw/reuters").mkdir(parents=True)
    docs = corpus_docs() + [sgml_doc(900, ["onlytrain"]), sgml_doc(901, ["acq", "onlytrain", "earn"]),
                            sgml_doc(902, ["earn", "acq"], "TEST", body="both topics in test"),
                            sgml_doc(903, [], body="no topic at all")]
    make_tarball(project / "data/raw/reuters/reuters21578.tar.gz", docs)
    out = prepare(make_config(project, label_mode="multi", min_docs_per_class=1), "reuters")
    card = json.loads((out / "card.json").read_text())
    reader = card["reader"]
    assert reader["kept_topics"] == 3 and card["labels"] == ["acq", "earn", "rare"]  # onlytrain: no test doc
    assert reader["no_kept_topic"] == 1 and reader["no_topic"] == 1  # doc 900; doc 903
    assert reader["modapte_with_kept_topic"] == {"train": 58, "test": 21}
    assert card["label_mode"] == "multi" and card["given_split_docs"] == {"test": 21, "train": 57}  # 1 empty text
    rows = {r["id"]: r for s in ("train", "dev", "test") for r in prepared(project, "reuters", s)}
    assert rows["901"]["labels"] == ["acq", "earn"] and rows["901"]["topics"] == ["acq", "onlytrain", "earn"]
    assert rows["902"]["labels"] == ["earn", "acq"] and "label" not in rows["902"]
    for split in ("train", "dev", "test"):  # counts = documents carrying each label
        got = pd.Series([lb for r in prepared(project, "reuters", split) for lb in r["labels"]]).value_counts()
        assert got.to_dict() == card["counts"][split]
    strict = prepare(make_config(project, label_mode="multi", min_docs_per_class=25), "reuters")
    assert json.loads((strict / "card.json").read_text())["labels"] == ["acq", "earn"]  # rare: 2 train docs


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv", "fasttext"])
def test_local_multi_label_column_list_or_delimited(project, fmt):
    sets = [["a"], ["a", "b"], ["b", "c"], ["c"]] * 10
    frame = pd.DataFrame({"text": [f"doc {i}" for i in range(40)], "label": sets})
    ds = {"kind": "local", "label_mode": "multi", "ratios": [0.5, 0.25, 0.25], "path": f"c.{fmt}"}
    if fmt == "jsonl":
        frame.to_json(project / "c.jsonl", orient="records", lines=True)
    elif fmt == "parquet":
        frame.to_parquet(project / "c.parquet")
    elif fmt == "csv":
        frame.assign(label=[" | ".join(s) for s in sets]).to_csv(project / "c.csv", index=False)
        ds["label_delimiter"] = "|"
    else:
        ds["path"] = "c.ft"
        (project / "c.ft").write_text("".join(" ".join(f"__label__{x}" for x in s) + f" doc {i}\n"
                                              for i, s in enumerate(sets)))
    raw = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    raw["datasets"]["mine"] = ds
    out = prepare(config_from_dict(raw), "mine")
    card = json.loads((out / "card.json").read_text())
    assert card["labels"] == ["a", "b", "c"] and sum(card["totals"].values()) == 40
    got = {r["text"]: r["labels"] for s in ("train", "dev", "test") for r in prepared(project, "mine", s)}
    assert got["doc 1"] == ["a", "b"] and got["doc 2"] == ["b", "c"] and got["doc 3"] == ["c"]


def test_local_multi_needs_a_list_column_or_a_delimiter(project):
    pd.DataFrame({"text": ["x", "y"], "label": ["a|b", "b"]}).to_csv(project / "c.csv", index=False)
    raw = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    raw["datasets"]["mine"] = {"kind": "local", "label_mode": "multi", "path": "c.csv"}
    with pytest.raises(TextbenchError, match=r"column 'label' holds \w*string, not a list of labels.*label_delimiter"):
        prepare(config_from_dict(raw), "mine")
    raw["datasets"]["mine"] = {"kind": "thucnews", "label_mode": "multi"}
    with pytest.raises(TextbenchError, match="label_mode: THUCNews files hold one category each"):
        config_from_dict(raw)
