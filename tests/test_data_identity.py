"""What a prepared document is: missing values are never classes or texts (one rule, every local
format), ids are unique, text columns hold text, every class has train documents, and copies that
differ only by Unicode compatibility forms or whitespace are duplicates across splits."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from pipeline.data.local import is_missing
from pipeline.data.prepare import prepare
from pipeline.errors import TextbenchError
from test_data_local import card, make_config, rows

SPELLINGS = ["", "  ", "NaN", "nan", "NA", "N/A", "n/a", "null", "NULL", "None", "none"]
FORMATS = ["csv", "tsv", "jsonl", "parquet", "fasttext"]


def write(project, fmt: str, records: list[dict]) -> str:
    """`records` ({text, label, ...}) as a corpus file of `fmt`; its name."""
    frame = pd.DataFrame(records)
    path = project / f"c.{'ft' if fmt == 'fasttext' else fmt}"
    if fmt == "fasttext":
        path.write_text("".join(f"__label__{r['label']} {r['text']}\n" for r in records), encoding="utf-8")
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")  # NaN stays a JSON NaN
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, sep="\t" if fmt == "tsv" else ",", index=False)
    return path.name


def corpus(missing) -> list[dict]:
    """40 labelled documents, then 3 whose label is `missing`."""
    good = [{"text": f"doc {i}", "label": "pos" if i % 2 else "neg"} for i in range(40)]
    return good + [{"text": f"unlabelled {i}", "label": missing} for i in range(3)]


def test_is_missing_is_one_rule():
    assert all(is_missing(v) for v in [None, math.nan, *SPELLINGS])
    assert not any(is_missing(v) for v in ["0", "neg", "nana", "n", 0, 0.0, ["a"]])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("missing", SPELLINGS + [None, math.nan])
def test_missing_labels_are_never_classes(project, capsys, fmt, missing):
    if fmt == "fasttext" and not isinstance(missing, str) or fmt != "jsonl" and isinstance(missing, float):
        pytest.skip("the format cannot hold this value")
    if fmt == "fasttext" and missing.strip() != missing:
        pytest.skip("whitespace ends a fastText label")
    path = write(project, fmt, corpus(missing))
    with pytest.raises(TextbenchError, match=r"(row|line) 4[12]: missing label .*datasets.mine.missing_labels: drop"):
        prepare(make_config(project, path=path), "mine")
    capsys.readouterr()
    prepare(make_config(project, path=path, missing_labels="drop"), "mine")
    assert card(project)["labels"] == ["neg", "pos"] and card(project)["reader"]["missing_labels_dropped"] == 3
    assert capsys.readouterr().err.count("dropped 3 document(s) with a missing label") == 1


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_missing_labels_inside_label_sets_are_not_labels(project, fmt):
    records = [{"text": f"doc {i}", "label": ["a", "NaN", None][: 1 + i % 3] + ["b"]} for i in range(40)]
    if fmt == "csv":
        records = [{**r, "label": "|".join("" if lb is None else lb for lb in r["label"])} for r in records]
    path = write(project, fmt, records)
    extra = {"label_delimiter": "|"} if fmt == "csv" else {}
    prepare(make_config(project, path=path, label_mode="multi", **extra), "mine")
    assert card(project)["labels"] == ["a", "b"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_missing_text_cells_are_empty_texts(project, fmt):
    records = corpus("pos")[:40] + [{"text": v, "label": "pos"} for v in ["NaN", "null", "N/A", None]]
    prepare(make_config(project, path=write(project, fmt, records)), "mine")
    assert card(project)["empty_docs_dropped"] == 4
    assert not [r for s in ("train", "dev", "test") for r in rows(project, s) if is_missing(r["text"])]


def test_ids_must_be_unique_in_one_file_and_across_split_files(project):
    records = [{"id": f"d{i % 39}", **r} for i, r in enumerate(corpus("pos")[:40])]
    with pytest.raises(TextbenchError, match=r"document id 'd0' occurs more than once \(documents 1 and 40\)"):
        prepare(make_config(project, path=write(project, "csv", records)), "mine")
    for split, part in (("train", records[:30]), ("test", records[:10])):
        pd.DataFrame(part).to_csv(project / f"{split}.csv", index=False)
    with pytest.raises(TextbenchError, match=r"document id 'd0' occurs more than once"):
        prepare(make_config(project, files={"train": "train.csv", "test": "test.csv"}), "mine")


@pytest.mark.parametrize(
    "fmt, values, says",
    [
        ("csv", [str(i) for i in range(40)], "only numbers"),
        ("csv", [f"{i}.5e3" for i in range(40)], "only numbers"),
        ("parquet", list(range(40)), "int64"),
        ("parquet", [i / 3 for i in range(40)], "double"),
        ("jsonl", [bool(i % 2) for i in range(40)], "bool"),
    ],
)
def test_a_text_column_must_hold_text(project, fmt, values, says):
    records = [{"text": v, "label": "pos" if i % 2 else "neg"} for i, v in enumerate(values)]
    with pytest.raises(
        TextbenchError, match=rf"text column 'text' holds {says}, not text; set datasets.mine.text_column"
    ):
        prepare(make_config(project, path=write(project, fmt, records)), "mine")


def test_a_class_without_train_documents_is_an_error_or_dropped(project, capsys):
    train = [{"text": f"train {i}", "label": "ab"[i % 2]} for i in range(30)]
    test = [{"text": f"test {i}", "label": "abc"[i % 3]} for i in range(12)]
    pd.DataFrame(train).to_csv(project / "train.csv", index=False)
    pd.DataFrame(test).to_csv(project / "test.csv", index=False)
    files = {"train": "train.csv", "test": "test.csv"}
    with pytest.raises(
        TextbenchError, match=r"class\(es\) \['c'\] have no train documents .*classes_without_train: drop"
    ):
        prepare(make_config(project, files=files), "mine")
    capsys.readouterr()
    prepare(make_config(project, files=files, classes_without_train="drop"), "mine")
    assert card(project)["labels"] == ["a", "b"] and card(project)["totals"]["test"] == 8
    assert {"label": "c", "docs": 4, "reason": "no train documents"} in card(project)["dropped_classes"]
    assert "dropped class(es) ['c'] without train documents" in capsys.readouterr().err


@pytest.mark.parametrize(
    "copy",
    [
        lambda t: t.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)}),  # fullwidth ASCII
        lambda t: t.replace("e", "\uff45").replace(" ", "\u3000"),  # fullwidth e, ideographic spaces
        lambda t: t.replace("e", "\u1d49"),  # modifier letter small e
        lambda t: t.replace("fi", "\ufb01"),  # the fi ligature
    ],
)
def test_nfkc_and_whitespace_equal_texts_are_duplicates_across_splits(project, copy):
    train = [{"text": f"fine review number {i}", "label": "ab"[i % 2]} for i in range(30)]
    test = [{"text": copy(r["text"]), "label": r["label"]} for r in train[:6]]
    assert all(c["text"] != t["text"] for c, t in zip(test, train))
    pd.DataFrame(train).to_csv(project / "train.csv", index=False)
    pd.DataFrame(test).to_csv(project / "test.csv", index=False)
    prepare(make_config(project, files={"train": "train.csv", "test": "test.csv"}), "mine")
    removed = card(project)["duplicates_removed"]
    assert removed["test"] == 0 and removed["train"] + removed["dev"] == 6  # dev is carved before de-duplication
    assert [r["text"] for r in rows(project, "test")] == [" ".join(t["text"].split()) for t in test]  # kept as given
