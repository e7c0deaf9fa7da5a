"""Bags of n-grams read whole documents: tfidf_svm, tfidf_lr and fasttext train and predict on the vocab
scheme's `bag_ids` (cut at datasets.<ds>.bag_max_len), the sequence models on `input_ids` (max_len);
the column exists only where it holds more than input_ids."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import edit_params
from pipeline.artifacts import ModelConfig, TokenizedMeta
from pipeline.cli import app
from pipeline.families import WHOLE_DOCUMENT
from pipeline.report.context import tokenizer_lines

runner = CliRunner()
SIGNAL = {"finance": "stocks", "sports": "football"}
FILLER = ["the", "and", "day", "news", "report", "city", "week", "people"]
MAX_LEN = 32


def document(rng: random.Random, label: str) -> str:
    """Filler well past MAX_LEN, then the class's word: only a reader of the whole document can tell."""
    return " ".join([rng.choice(FILLER) for _ in range(rng.randint(60, 120))] + [SIGNAL[label]] * 3)


def write_project(root: Path, **dataset: object) -> None:
    rng = random.Random(5)
    out = root / "data" / "prepared" / "reuters"
    out.mkdir(parents=True, exist_ok=True)
    for split, n in {"train": 40, "dev": 10, "test": 10}.items():
        labels = [sorted(SIGNAL)[i % 2] for i in range(n)]
        texts = [document(rng, y) for y in labels]
        ids = [f"{split}{i}" for i in range(n)]
        pq.write_table(pa.table({"id": ids, "text": texts, "label": labels}), out / f"{split}.parquet")
    (out / "card.json").write_text(json.dumps({"labels": sorted(SIGNAL)}), encoding="utf-8")

    def edit(raw: dict) -> None:
        raw["datasets"]["reuters"] = {"kind": "local", "path": "unused.csv", "max_len": MAX_LEN, **dataset}
        raw["train"] = {"threads": 1}
        raw["models"] = {m: {"train": {"epochs": 1, "batch_size": 16}} for m in ("textcnn", "fasttext")}
        raw["models"]["fasttext"]["arch"] = {"ngram_buckets": 1000}  # not 200,000: faster, the bags are the same

    edit_params(root, edit)
    assert runner.invoke(app, ["tokenize", "-d", "reuters", "-s", "vocab"]).exit_code == 0


def vocab_dir(root: Path) -> Path:
    return root / "data" / "tokenized" / "reuters" / "vocab"


def test_bag_column_holds_whole_documents_as_a_list_column(project: Path) -> None:
    write_project(project)
    table = pq.read_table(vocab_dir(project) / "train.parquet")
    assert table.schema.field("bag_ids").type == pa.list_(pa.int32())  # offsets + values: no object per token
    meta = TokenizedMeta.of(vocab_dir(project))
    assert meta.max_len == MAX_LEN and meta.bag_max_len == 8192
    bags, seqs = table.column("bag_ids").to_pylist(), table.column("input_ids").to_pylist()
    assert max(map(len, seqs)) == MAX_LEN and max(map(len, bags)) > MAX_LEN
    assert all(b[:MAX_LEN] == s for b, s in zip(bags, seqs))
    lines = [t for t, _ in tokenizer_lines("reuters") if "whole documents" in t]
    assert lines and all(m in lines[0] for m in WHOLE_DOCUMENT) and "bag_max_len 8192" in lines[0]


@pytest.mark.parametrize("bag_max_len", [0, MAX_LEN, 16])
def test_a_bag_cap_at_or_below_max_len_changes_nothing(project: Path, bag_max_len: int) -> None:
    write_project(project, bag_max_len=bag_max_len)
    assert "bag_ids" not in pq.ParquetFile(vocab_dir(project) / "train.parquet").schema_arrow.names
    assert "bag_max_len" not in json.loads((vocab_dir(project) / "meta.json").read_text())
    assert not [t for t, _ in tokenizer_lines("reuters") if "whole documents" in t]


@pytest.mark.parametrize("model", [*WHOLE_DOCUMENT, "textcnn"])
def test_bags_train_and_predict_on_whole_documents_sequences_on_max_len(project: Path, model: str) -> None:
    from pipeline.serve.predictor import Predictor

    write_project(project, bag_max_len=512)
    result = runner.invoke(app, ["train", "-d", "reuters", "-m", model])
    assert result.exit_code == 0, result.output
    model_dir = project / "models" / "reuters" / model
    cap = 512 if model in WHOLE_DOCUMENT else MAX_LEN
    assert ModelConfig.of(model_dir).max_len == cap
    predictor = Predictor.load(model_dir)
    assert len(predictor.encoder.encode(["day " * 1000])[0]) == cap
    if model.startswith("tfidf"):  # the signal sits past max_len: only whole documents separate the classes
        metrics = json.loads((project / "reports" / "reuters" / model / "metrics.json").read_text())
        assert metrics["accuracy"] == 1.0
        texts = [document(random.Random(i), y) for i, y in enumerate(sorted(SIGNAL))]
        assert [predictor.labels[i] for i in predictor.predict_proba(texts).argmax(1)] == sorted(SIGNAL)
        from pipeline.serve.export import export

        # export measures the model on the ids it reads (bag_ids), not on the max_len cut
        assert export(model_dir, onnx=False)["runtimes"]["fp32"]["accuracy"] == 1.0
