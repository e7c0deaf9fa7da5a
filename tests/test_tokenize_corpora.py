"""Tokenize stage on the real corpora, prepared by the data stage: Reuters through MiniLM and the
word vocabulary, the THUCNews sample through chars and jieba (pool), byte-identical reruns."""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import CORPORA, base_params
from pipeline.config import config_from_dict
from pipeline.data.prepare import prepare
from pipeline.io import sha256_file
from pipeline.tokenize import load_encoder
from pipeline.tokenize.encoder import clean
from pipeline.tokenize.stage import tokenize_scheme
from pipeline.tokenize.vocab import WORD_PATTERN, build_vocab

pytestmark = pytest.mark.corpora
ARCHIVES = {"reuters": "reuters21578.tar.gz", "thucnews": "THUCNews-sample.zip"}


@pytest.fixture(scope="module")
def real_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project root with both real corpora prepared by the data stage (once for this module)."""
    if not (CORPORA / ARCHIVES["reuters"]).is_file():
        pytest.skip(f"real corpora not found at {CORPORA} (set TEXTBENCH_CORPORA to run these tests)")
    root = tmp_path_factory.mktemp("real")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEXTBENCH_ROOT", str(root))
        mp.chdir(root)
        cfg = config(root)
        for name, archive in ARCHIVES.items():
            (root / "data" / "raw" / name).mkdir(parents=True)
            os.symlink(CORPORA / archive, root / "data" / "raw" / name / archive)
            prepare(cfg, name)
        yield root


def config(root: Path, **tokenize: object):
    """The shipped params with the settings these tests assert on pinned (max_len, vocab limits)."""
    raw = base_params()
    raw["datasets"]["reuters"]["max_len"], raw["datasets"]["thucnews"]["max_len"] = 256, 48
    vocab = {"max_size": 50000, "min_freq": 1, "zh_mode": "char", "embeddings": "", **tokenize.pop("vocab", {})}  # type: ignore[dict-item]
    raw["tokenize"] = {"truncation": "head", "batch_size": 1000, "workers": 2, **tokenize, "vocab": vocab}
    return config_from_dict(raw)


def texts(root: Path, ds: str, split: str) -> list[str]:
    return pq.read_table(root / "data" / "prepared" / ds / f"{split}.parquet").column("text").to_pylist()


@pytest.fixture
def at(real_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEXTBENCH_ROOT", str(real_root))
    monkeypatch.chdir(real_root)
    return real_root


def test_reuters_subword_matches_the_hf_tokenizer(at: Path):
    out = tokenize_scheme(config(at), "reuters", "subword")
    meta = json.loads((out / "meta.json").read_text())
    card = json.loads((at / "data/prepared/reuters/card.json").read_text())
    assert meta["labels"] == card["labels"] and meta["max_len"] == 256
    table = pq.read_table(out / "test.parquet")
    assert table.num_rows == card["totals"]["test"] == meta["splits"]["test"]["docs"]
    ids = table.column("input_ids").to_pylist()
    enc = load_encoder(out)
    hf = enc.hf.backend_tokenizer
    hf.no_truncation()
    hf.no_padding()
    raw = texts(at, "reuters", "test")
    reference = [e.ids for e in hf.encode_batch([clean(t) for t in raw], add_special_tokens=True)]
    assert [r if len(r) <= 256 else r[:255] + [102] for r in reference] == ids  # word cache == plain tokenizer
    assert enc.tokens(ids[0])[0] == "[CLS]" and max(map(len, ids)) == 256
    lengths = sorted(len(r) for r in reference)
    assert meta["splits"]["test"]["length_before_truncation"]["max"] == lengths[-1]
    assert meta["splits"]["test"]["truncated_share"] == pytest.approx(
        sum(n > 256 for n in lengths) / len(lengths), abs=1e-6
    )
    assert meta["splits"]["train"]["unk_rate"] < 0.01


def test_reuters_vocab_is_train_only(at: Path):
    out = tokenize_scheme(config(at), "reuters", "vocab")
    itos = json.loads((out / "vocab.json").read_text())
    counts = Counter(w for t in texts(at, "reuters", "train") for w in re.findall(WORD_PATTERN, clean(t).lower()))
    assert itos == build_vocab(counts, 50000, 1)
    enc = load_encoder(out)
    test_only = next(
        w for t in texts(at, "reuters", "test") for w in re.findall(WORD_PATTERN, clean(t).lower()) if w not in counts
    )
    assert enc.encode([f"oil {test_only}"]) == [[itos.index("oil"), 1]]
    first = pq.read_table(out / "train.parquet").column("input_ids")[0].as_py()
    assert enc.tokens(first) == re.findall(WORD_PATTERN, clean(texts(at, "reuters", "train")[0]).lower())[:256]


def test_thucnews_minilm_unk_rate_is_surfaced(at: Path, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING):
        out = tokenize_scheme(config(at), "thucnews", "subword")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["splits"]["train"]["unk_rate"] > 0.5
    assert len(meta["warnings"]) == 3 and "bert-base-chinese" in meta["warnings"][0]  # the report shows these
    assert re.search(r"thucnews/subword train: \d+\.\d% of tokens are \[UNK\]", caplog.text)


def test_thucnews_char_and_jieba_byte_identical(at: Path):
    char = tokenize_scheme(config(at, vocab={"zh_mode": "char"}), "thucnews", "vocab")
    enc = load_encoder(char)
    first = texts(at, "thucnews", "train")[0]
    row = pq.read_table(char / "train.parquet").column("input_ids")[0].as_py()
    assert "".join(enc.tokens(row)) == clean(first).lower().replace(" ", "")[:48]

    def jieba_run(workers: int) -> dict[str, str]:
        out = tokenize_scheme(config(at, workers=workers, vocab={"zh_mode": "jieba"}), "thucnews", "vocab")
        return {p.name: sha256_file(p) for p in sorted(out.iterdir())}

    pooled = jieba_run(2)
    assert jieba_run(2) == pooled  # workers=1 vs 2 equality: tests/test_tokenize.py
    itos = json.loads((at / "data/tokenized/thucnews/vocab/vocab.json").read_text())
    assert any(len(t) > 1 for t in itos[2:50])  # words, not chars
