"""Pretrained embeddings with a NaN or infinite value (in either accepted format, in a row the
vocabulary uses) are one error naming the file and its line or row: such a value used to become the
std of every missing row's random init, and training then blamed the learning rate."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import TextbenchError
from pipeline.tokenize.embeddings import aligned_embeddings

ITOS = ["<pad>", "<unk>", "goal", "stock", "market"]
COUNTS = Counter({"goal": 3, "stock": 2, "market": 1})
NON_FINITE = ["nan", "inf", "-inf", "NaN", "1e39"]  # 1e39 overflows float32 to inf


def word2vec(tmp_path: Path, bad: str, token: str) -> Path:
    path = tmp_path / "vectors.vec"
    path.write_text(f"3 3\nGoal 0.1 0.2 0.3\n{token} {bad} 0.5 1\nother 1 2 3\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("bad", NON_FINITE)
@pytest.mark.parametrize("token", ["stock", "MARKET"])  # found as is, or lowercased
def test_word2vec_non_finite_row_names_file_and_line(tmp_path: Path, bad: str, token: str) -> None:
    path = word2vec(tmp_path, bad, token)
    with pytest.raises(TextbenchError, match=rf"^{path}:3: the vector holds NaN or infinite values"):
        aligned_embeddings(path, None, ITOS, COUNTS, seed=1)


@pytest.mark.parametrize("bad", NON_FINITE)
@pytest.mark.parametrize("vocab_suffix", [".txt", ".json"])
def test_npz_non_finite_row_names_file_and_row(tmp_path: Path, bad: str, vocab_suffix: str) -> None:
    words = ["goal", "stock", "market"]
    matrix = np.ones((3, 4), dtype=np.float64)
    matrix[1, 2] = float(bad)
    np.savez(tmp_path / "emb.npz", embeddings=matrix)
    vocab = tmp_path / f"emb{vocab_suffix}"
    vocab.write_text(json.dumps(words) if vocab_suffix == ".json" else "\n".join(words), encoding="utf-8")
    with pytest.raises(
        TextbenchError, match=rf"^{tmp_path / 'emb.npz'}: row 1 \(token 'stock'\): the vector holds NaN"
    ):
        aligned_embeddings(tmp_path / "emb.npz", vocab, ITOS, COUNTS, seed=1)


def test_finite_vectors_keep_every_row_finite(tmp_path: Path) -> None:
    matrix, coverage = aligned_embeddings(word2vec(tmp_path, "0.4", "stock"), None, ITOS, COUNTS, seed=1)
    assert np.isfinite(matrix).all() and coverage["vocab_coverage"] == 0.5
