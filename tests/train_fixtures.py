"""Generated fixtures for the model and trainer tests: a tiny random BERT checkpoint with a
WordPiece tokenizer, and a learnable 4-class corpus in the prepared + tokenized contracts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from conftest import edit_params

LABELS = ["alpha", "beta", "gamma", "delta"]
WORDS = [f"w{i}" for i in range(40)]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4, words from 5


def tiny_bert(path: Path) -> Path:
    """A randomly initialised (seeded: the same weights every session) 2-layer, hidden-32 BERT + fast
    WordPiece tokenizer saved at `path`."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(SPECIALS + WORDS) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(str(path))
    cfg = BertConfig(
        vocab_size=len(SPECIALS) + len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(str(path))
    return path


def toy_docs(n: int, seed: int) -> tuple[list[list[int]], list[int]]:
    """Word indices (0-based into WORDS) and labels: class c's documents carry words 10c..10c+9
    mixed with shared noise words, lengths 3..14."""
    rng = np.random.default_rng(seed)
    docs, labels = [], []
    for i in range(n):
        c = i % len(LABELS)
        k = int(rng.integers(3, 15))
        own = rng.integers(10 * c, 10 * c + 10, size=k)
        docs.append([int(w) if rng.random() < 0.8 else int(rng.integers(0, 40)) for w in own])
        labels.append(c)
    return docs, labels


def write_toy_project(root: Path, encoder: Path, sizes: dict[str, int] | None = None) -> None:
    """data/prepared/toy/*.parquet, data/tokenized/toy/{vocab,subword}/ and a `toy` dataset in params.yaml."""
    sizes = sizes or {"train": 96, "dev": 24, "test": 24}
    prep = root / "data" / "prepared" / "toy"
    prep.mkdir(parents=True, exist_ok=True)
    for scheme in ("vocab", "subword"):
        (root / "data" / "tokenized" / "toy" / scheme).mkdir(parents=True, exist_ok=True)
    for s, (split, n) in enumerate(sizes.items()):
        docs, labels = toy_docs(n, seed=s)
        ids = [f"{split}-{i}" for i in range(n)]
        texts = [" ".join(WORDS[w] for w in d) for d in docs]
        pq.write_table(
            pa.table({"id": ids, "text": texts, "label": [LABELS[c] for c in labels]}), prep / f"{split}.parquet"
        )
        for scheme, seqs in (
            ("vocab", [[w + 2 for w in d] for d in docs]),
            ("subword", [[2] + [w + len(SPECIALS) for w in d] + [3] for d in docs]),
        ):
            table = pa.table(
                {"id": ids, "input_ids": pa.array(seqs, pa.list_(pa.int32())), "label": pa.array(labels, pa.int32())}
            )
            pq.write_table(table, root / "data" / "tokenized" / "toy" / scheme / f"{split}.parquet")
    common = {"labels": LABELS, "max_len": 16, "truncation": "head", "language": "en", "fingerprint": "toy"}
    vocab_dir = root / "data" / "tokenized" / "toy" / "vocab"
    (vocab_dir / "vocab.json").write_text(json.dumps(["<pad>", "<unk>"] + WORDS), encoding="utf-8")
    _meta(
        vocab_dir,
        common
        | {"scheme": "vocab", "vocab_size": len(WORDS) + 2, "pad_id": 0, "zh_mode": "char", "vocab_file": "vocab.json"},
    )
    sub_dir = root / "data" / "tokenized" / "toy" / "subword"
    _meta(
        sub_dir,
        common | {"scheme": "subword", "vocab_size": len(SPECIALS) + len(WORDS), "pad_id": 0, "encoder": str(encoder)},
    )
    from pipeline.families import MODELS

    def edit(params: dict) -> None:
        params["datasets"]["toy"] = {"kind": "local", "path": "toy.csv", "max_len": 16, "encoder": str(encoder)}
        params["train"] = {**params.get("train", {}), "eval_every": 4, "precision": "fp32", "threads": 1}
        # every registered model: the shipped arch (families + models), the toy's own train settings; fastText
        # with 1,000 n-gram buckets, not the registry's 200,000 (2 x 240 MB tables at embed_dim 300 for a
        # 16-token toy: the same model here, minus seconds of init, copies and checkpoint writes per run)
        params["families"] = {f: {"arch": spec.get("arch", {})} for f, spec in params.get("families", {}).items()}
        params["models"] = {
            name: {
                "arch": params.get("models", {}).get(name, {}).get("arch", {})
                | ({"ngram_buckets": 1000} if name == "fasttext" else {}),
                "train": {"epochs": 2, "batch_size": 16, "lr": 3e-3},
            }
            for name in MODELS
        }

    edit_params(root, edit)


def _meta(directory: Path, meta: dict) -> None:
    (directory / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
