"""Tokenize stage on generated prepared-contract fixtures: contract layout, round trips, truncation,
train-only vocabulary, embeddings, byte reproducibility and every bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import edit_params
from pipeline.cli import app
from pipeline.config import load_config
from pipeline.errors import TextbenchError
from pipeline.io import sha256_file
from pipeline.tokenize import load_encoder
from pipeline.tokenize.encoder import head_tokens, truncate
from pipeline.tokenize.stage import tokenize_dataset
from pipeline.tokenize.vocab import build_vocab

EN = {
    "train": [
        ("a1", "Oil prices rose sharply in U.S. trading.", "crude"),
        ("a2", "Wheat exports fell; grain prices fell too.", "grain"),
        ("a3", "Crude oil output rose. " * 60, "crude"),
    ],
    "dev": [("b1", "Oil rose.", "crude")],
    "test": [("c1", "Zebra oil", "grain")],
}
ZH = {
    "train": [("z1", "股市大涨，投资者欢迎", "股票"), ("z2", "球队赢得比赛", "体育")],
    "dev": [("z3", "股市大跌", "股票")],
    "test": [("z4", "比赛结束", "体育")],
}


PINNED = {  # what these tests assume, whatever the shipped params.yaml says today
    "datasets.reuters.max_len": 256,
    "datasets.reuters.encoder": "minilm",
    "datasets.thucnews.max_len": 48,
    "datasets.thucnews.encoder": "minilm",
    "tokenize.truncation": "head",
    "tokenize.batch_size": 1000,
    "tokenize.workers": 1,
    "tokenize.vocab": {"max_size": 50000, "min_freq": 1, "zh_mode": "char", "embeddings": ""},
}


def write_prepared(root: Path, dataset: str, rows: dict[str, list[tuple[str, str, str]]]) -> None:
    """Prepared-contract parquet (id/text/label), a card.json with the sorted labels, and PINNED params."""
    set_params(root, **PINNED)
    out = root / "data" / "prepared" / dataset
    out.mkdir(parents=True, exist_ok=True)
    for split, docs in rows.items():
        ids, texts, labels = zip(*docs)
        pq.write_table(
            pa.table({"id": list(ids), "text": list(texts), "label": list(labels)}), out / f"{split}.parquet"
        )
    labels = sorted({d[2] for docs in rows.values() for d in docs})
    (out / "card.json").write_text(json.dumps({"labels": labels}), encoding="utf-8")


def set_params(root: Path, **changes: object) -> None:
    """Edit the project's params.yaml: keys are dotted paths ('datasets.reuters.max_len')."""

    def edit(raw: dict) -> None:
        for key, value in changes.items():
            node = raw
            *parents, last = key.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[last] = value

    edit_params(root, edit)


def read(path: Path) -> pa.Table:
    return pq.read_table(path)


def test_truncation_head_and_tail():
    assert head_tokens(510, "head+tail") == 128 and head_tokens(254, "head") == 254
    assert truncate(list(range(10)), 6, 2) == [0, 1, 6, 7, 8, 9]
    assert truncate(list(range(10)), 6, 6) == [0, 1, 2, 3, 4, 5]
    assert truncate([1, 2], 6, 2) == [1, 2]


def test_vocab_ties_and_limits():
    counts = Counter({"b": 2, "a": 2, "c": 3, "d": 1})
    assert build_vocab(counts, 10, 1) == ["<pad>", "<unk>", "c", "a", "b", "d"]
    assert build_vocab(counts, 4, 2) == ["<pad>", "<unk>", "c", "a"]


def test_subword_contract_and_round_trip(project: Path):
    write_prepared(project, "reuters", EN)
    set_params(project, **{"datasets.reuters.max_len": 16})
    (sub, voc) = tokenize_dataset(load_config("params.yaml"), "reuters")
    meta = json.loads((sub / "meta.json").read_text())
    assert meta["scheme"] == "subword" and meta["encoder"] == "minilm" and meta["labels"] == ["crude", "grain"]
    assert {"vocab_size", "pad_id", "max_len", "truncation", "language", "fingerprint"} <= set(meta)
    table = read(sub / "train.parquet")
    assert (
        table.schema.field("input_ids").type == pa.list_(pa.int32()) and table.schema.field("label").type == pa.int32()
    )
    ids = table.column("input_ids").to_pylist()
    enc = load_encoder(sub)
    assert enc.tokens(ids[0]) == [
        "[CLS]",
        "oil",
        "prices",
        "rose",
        "sharply",
        "in",
        "u",
        ".",
        "s",
        ".",
        "trading",
        ".",
        "[SEP]",
    ]
    assert ids == enc.encode([t for _, t, _ in EN["train"]])  # prediction path == stage path
    assert len(ids[2]) == 16 and max(len(x) for x in ids) == 16
    assert table.column("label").to_pylist() == [0, 1, 0]
    assert meta["splits"]["train"]["length_before_truncation"]["max"] > 16
    assert meta["splits"]["train"]["truncated_share"] == pytest.approx(1 / 3, abs=1e-5)
    assert (sub / "tokenizer.json").is_file()  # HF files saved for the trained model to carry


def test_head_tail_keeps_the_end(project: Path):
    write_prepared(project, "reuters", EN)
    set_params(project, **{"datasets.reuters.max_len": 12, "tokenize.truncation": "head+tail"})
    (sub,) = tokenize_dataset(load_config("params.yaml"), "reuters", ("subword",))
    meta = json.loads((sub / "meta.json").read_text())
    assert meta["head_tokens"] == round(10 * 128 / 510) == 3
    toks = load_encoder(sub).tokens(read(sub / "train.parquet").column("input_ids")[2].as_py())
    assert toks == ["[CLS]", "crude", "oil", "output", "rose", ".", "crude", "oil", "output", "rose", ".", "[SEP]"]


def test_vocab_from_train_only(project: Path):
    write_prepared(project, "reuters", EN)
    (voc,) = tokenize_dataset(load_config("params.yaml"), "reuters", ("vocab",))
    meta = json.loads((voc / "meta.json").read_text())
    itos = json.loads((voc / "vocab.json").read_text())
    assert meta["vocab_file"] == "vocab.json" and meta["vocab_size"] == len(itos) and itos[:2] == ["<pad>", "<unk>"]
    assert "zebra" not in itos and "u.s" in itos
    enc = load_encoder(voc)
    test_ids = read(voc / "test.parquet").column("input_ids")[0].as_py()
    assert enc.tokens(test_ids) == ["<unk>", "oil"]
    assert meta["splits"]["test"]["unk_rate"] == 0.5
    assert enc.tokens(enc.encode(["Wheat exports fell; grain prices fell too."])[0]) == [
        "wheat",
        "exports",
        "fell",
        "grain",
        "prices",
        "fell",
        "too",
    ]


@pytest.mark.parametrize("mode", ["char", pytest.param("jieba", marks=pytest.mark.slow)])
def test_chinese_vocab_round_trip(project: Path, mode: str):
    write_prepared(project, "thucnews", ZH)
    set_params(project, **{"tokenize.vocab.zh_mode": mode, "tokenize.workers": 2 if mode == "jieba" else 1})
    (voc,) = tokenize_dataset(load_config("params.yaml"), "thucnews", ("vocab",))
    enc = load_encoder(voc)
    first = enc.tokens(read(voc / "train.parquet").column("input_ids")[0].as_py())
    if mode == "char":
        assert first == list("股市大涨,投资者欢迎")  # NFKC: full-width comma → ','
    else:
        assert "股市" in first and "投资者" in first and "".join(first) == "股市大涨,投资者欢迎"


@pytest.mark.slow
def test_byte_identical_and_batch_size_independent(project: Path):
    write_prepared(project, "thucnews", ZH)
    set_params(project, **{"tokenize.vocab.zh_mode": "jieba", "tokenize.workers": 2})
    cfg = load_config("params.yaml")

    def digest() -> dict[str, str]:
        tokenize_dataset(load_config("params.yaml"), "thucnews")
        out = project / "data" / "tokenized" / "thucnews"
        return {str(p.relative_to(out)): sha256_file(p) for p in sorted(out.rglob("*")) if p.is_file()}

    first = digest()
    set_params(project, **{"tokenize.batch_size": 1, "tokenize.workers": 1})
    assert digest() == first
    assert cfg.tokenize.workers == 2 and "vocab/vocab.json" in first and "subword/train.parquet" in first


@pytest.mark.slow
def test_fingerprint_tracks_settings(project: Path):
    write_prepared(project, "reuters", EN)

    def fp() -> tuple[str, str]:
        out = tokenize_dataset(load_config("params.yaml"), "reuters")
        return tuple(json.loads((p / "meta.json").read_text())["fingerprint"] for p in out)

    base = fp()
    copy = load_encoder(project / "data/tokenized/reuters/subword").hf
    copy.save_pretrained(str(project / "my-encoder"))  # same vocabulary, another encoder reference
    for key, value in [
        ("datasets.reuters.max_len", 64),
        ("tokenize.truncation", "head+tail"),
        ("tokenize.vocab.min_freq", 2),
        ("datasets.reuters.encoder", str(project / "my-encoder")),
    ]:
        set_params(project, **{key: value})
        now = fp()
        assert (now[0] != base[0]) == (key != "tokenize.vocab.min_freq"), key
        assert (now[1] != base[1]) == (key != "datasets.reuters.encoder"), key
        base = now


def test_pretrained_embeddings_npz_and_word2vec(project: Path):
    write_prepared(project, "reuters", EN)
    np.savez(project / "emb.npz", embeddings=np.arange(6, dtype=np.float32).reshape(2, 3) + 1)
    (project / "emb.txt").write_text("Oil\nprices\n", encoding="utf-8")
    set_params(project, **{"tokenize.vocab.embeddings": "emb.npz", "tokenize.vocab.embeddings_vocab": "emb.txt"})
    (voc,) = tokenize_dataset(load_config("params.yaml"), "reuters", ("vocab",))
    meta = json.loads((voc / "meta.json").read_text())
    itos = json.loads((voc / "vocab.json").read_text())
    m = np.load(voc / "embeddings.npy", allow_pickle=False)
    assert m.dtype == np.float32 and m.shape == (len(itos), 3) and meta["embeddings_file"] == "embeddings.npy"
    assert m[itos.index("oil")].tolist() == [1, 2, 3] and m[itos.index("prices")].tolist() == [4, 5, 6]
    assert not m[0].any() and m[1].any()
    assert meta["embeddings_coverage"]["vocab_coverage"] == pytest.approx(2 / (len(itos) - 1), abs=1e-6)

    (project / "w2v.vec").write_text("2 2\noil 0.5 0.25\nzebra 1 1\n", encoding="utf-8")
    set_params(project, **{"tokenize.vocab.embeddings": "w2v.vec", "tokenize.vocab.embeddings_vocab": ""})
    (voc,) = tokenize_dataset(load_config("params.yaml"), "reuters", ("vocab",))
    m = np.load(voc / "embeddings.npy", allow_pickle=False)
    assert m[itos.index("oil")].tolist() == [0.5, 0.25]


@pytest.mark.parametrize(
    "case,expected",
    [
        ("missing_split", r"dev\.parquet: prepared split not found; run `textbench prepare -d reuters`"),
        ("empty_text", r"id=b1 in split 'dev' has no tokens after cleaning"),
        ("bad_encoder", r"cannot load encoder '/nonexistent/ckpt'.*HF_HUB_OFFLINE is set"),
        ("npz_shape", r"emb\.npz: 3 rows but .*emb\.txt lists 2 tokens"),
        ("w2v_format", r"w2v\.txt: first line must be the word2vec header"),
        ("pickle_npz", r"emb\.npz: not a readable \.npz"),
    ],
)
def test_bad_input_is_one_clear_error_and_leaves_nothing(project: Path, case: str, expected: str):
    rows = {k: list(v) for k, v in EN.items()}
    scheme = "vocab"
    if case == "empty_text":
        rows["dev"] = [("b1", " \t ... ", "crude")]
    write_prepared(project, "reuters", rows)
    if case == "missing_split":
        (project / "data/prepared/reuters/dev.parquet").unlink()
    if case == "bad_encoder":
        set_params(project, **{"datasets.reuters.encoder": "/nonexistent/ckpt"})
        scheme = "subword"
    if case == "npz_shape":
        np.savez(project / "emb.npz", embeddings=np.zeros((3, 2), np.float32))
    if case == "pickle_npz":
        np.savez(project / "emb.npz", embeddings=np.array([{"x": 1}], dtype=object))
    if case in ("npz_shape", "pickle_npz"):
        (project / "emb.txt").write_text("oil\nprices\n", encoding="utf-8")
        set_params(project, **{"tokenize.vocab.embeddings": "emb.npz", "tokenize.vocab.embeddings_vocab": "emb.txt"})
    if case == "w2v_format":
        (project / "w2v.txt").write_text("oil 0.1 0.2\n", encoding="utf-8")
        set_params(project, **{"tokenize.vocab.embeddings": "w2v.txt"})
    result = CliRunner().invoke(app, ["tokenize", "--dataset", "reuters", "--scheme", scheme])
    assert isinstance(result.exception, TextbenchError), result.output
    assert re.search(expected, str(result.exception)) and "\n" not in str(result.exception), result.exception
    out = project / "data" / "tokenized" / "reuters"
    assert not out.exists() or not any(out.iterdir())


def test_console_script_prints_one_error_line(project: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "tokenize", "-d", "reuters"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {project / 'data/prepared/reuters/train.parquet'}: prepared split not found; run `textbench prepare -d reuters` first"
    ]


def test_word_cache_equals_the_plain_tokenizer():
    from pipeline.tokenize.subword import SubwordEncoder

    enc = SubwordEncoder.from_config("minilm", 512, "head")
    texts = [
        "Ünïcode Straße ΣΟΦΙΑ naïve café 東京 x\u200by ｆｕｌｌ ﬁ ℃ İstanbul",
        "a" * 150 + " ok",
        "MiXeD CaSe... 3.5% U.S.-based (don't) #tag @user",
        "\x07ctrl\ttab\nnew   line",
        "",
        "股市大涨，投资者欢迎",
    ]
    cached = enc.pieces(texts + texts)
    assert enc.word_cache
    enc.word_cache = None  # the path every non-BERT tokenizer takes: whole texts through the Rust pipeline
    assert enc.pieces(texts + texts) == cached
