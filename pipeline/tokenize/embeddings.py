"""Pretrained word vectors aligned to the vocabulary → embeddings.npy (float32 [vocab_size, dim]).

Accepted (`tokenize.vocab.embeddings`, paths relative to the project root):
- `.npz` with an `embeddings` matrix [N, D] + `tokenize.vocab.embeddings_vocab`: N tokens as
  txt (one a line) or a JSON list. Read with `allow_pickle=False`: nothing is ever unpickled.
- word2vec text (`.txt`/`.vec`): header line "N D", then "token v1 ... vD" per line.
A vocab token is looked up as is, then lowercased. Rows not found: normal(0, std of the found
vectors) from a generator seeded with `seed`; `<pad>` is all zeros. A NaN or infinite value (as
float32; in any .npz row, in a word2vec line the vocabulary uses) is an error naming the file and line
or row: it would poison that std, hence every random row, and training would then blame the lr.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from pipeline.errors import TextbenchError
from pipeline.tokenize.vocab import PAD


def _npz(path: Path, vocab_path: Path | None) -> dict[str, np.ndarray]:
    if vocab_path is None or not vocab_path.is_file():
        raise TextbenchError(
            f"{path}: a .npz needs tokenize.vocab.embeddings_vocab (txt or JSON token list); got {vocab_path}"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            if "embeddings" not in z.files:
                raise TextbenchError(
                    f"{path}: no 'embeddings' array (has {z.files}); save it with np.savez(path, embeddings=M)"
                )
            matrix = z["embeddings"]
    except (ValueError, OSError) as e:
        raise TextbenchError(f"{path}: not a readable .npz of numeric arrays ({e})") from None
    text = vocab_path.read_text(encoding="utf-8")
    words = json.loads(text) if vocab_path.suffix == ".json" else text.splitlines()
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
        raise TextbenchError(
            f"{path}: 'embeddings' must be a 2-D numeric matrix, got shape {matrix.shape} {matrix.dtype}"
        )
    if len(words) != matrix.shape[0]:
        raise TextbenchError(
            f"{path}: {matrix.shape[0]} rows but {vocab_path} lists {len(words)} tokens; they must match"
        )
    with np.errstate(over="ignore"):  # as float32, as they are used: 1e39 is inf there
        matrix = matrix.astype(np.float32)
    if len(bad := np.flatnonzero(~np.isfinite(matrix).all(axis=1))):
        raise non_finite(f"{path}: row {bad[0]} (token {words[bad[0]]!r})")
    table: dict[str, np.ndarray] = {}
    for word, row in zip(words, matrix):
        table.setdefault(word, row)
    return table


def non_finite(where: str) -> TextbenchError:
    return TextbenchError(f"{where}: the vector holds NaN or infinite values; fix or drop that row")


def _word2vec(path: Path, wanted: set[str]) -> dict[str, np.ndarray]:
    table: dict[str, np.ndarray] = {}
    with open(path, encoding="utf-8", errors="strict") as f:
        header = f.readline().split()
        if len(header) != 2 or not all(h.isdigit() for h in header):
            raise TextbenchError(f"{path}: first line must be the word2vec header 'N D', got {' '.join(header)[:80]!r}")
        dim = int(header[1])
        for lineno, line in enumerate(f, start=2):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if len(parts) != dim + 1:
                raise TextbenchError(
                    f"{path}:{lineno}: expected a token and {dim} numbers, got {len(parts) - 1} fields"
                )
            if parts[0] in wanted or parts[0].lower() in wanted:
                try:
                    with np.errstate(over="ignore"):  # a value past float32's range is inf, refused below
                        vector = np.asarray(parts[1:], dtype=np.float32)
                except ValueError:
                    raise TextbenchError(f"{path}:{lineno}: non-numeric vector value") from None
                if not np.isfinite(vector).all():
                    raise non_finite(f"{path}:{lineno}")
                table.setdefault(parts[0], vector)
    return table


def aligned_embeddings(
    path: Path, vocab_path: Path | None, itos: list[str], counts: Counter[str], seed: int
) -> tuple[np.ndarray, dict[str, float]]:
    """Matrix aligned to `itos` and its coverage (share of vocab, share of train tokens found)."""
    if not path.is_file():
        raise TextbenchError(f"{path}: embeddings file not found (tokenize.vocab.embeddings)")
    if path.suffix == ".npz":
        table = _npz(path, vocab_path)
    elif path.suffix in (".txt", ".vec"):
        table = _word2vec(path, set(itos) | {t.lower() for t in itos})
    else:
        raise TextbenchError(
            f"{path}: unsupported embeddings format; use .npz (+ embeddings_vocab) or word2vec .txt/.vec"
        )
    if not table:
        raise TextbenchError(f"{path}: no vector matches any vocabulary token; is it the right language/casing?")
    lower: dict[str, np.ndarray] = {}
    for word, row in table.items():
        lower.setdefault(word.lower(), row)
    found = {i: table.get(t, lower.get(t)) for i, t in enumerate(itos) if t != PAD}
    found = {i: v for i, v in found.items() if v is not None}
    dim = len(next(iter(table.values())))
    vectors = np.stack(list(found.values())).astype(np.float32) if found else np.zeros((0, dim), np.float32)
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, float(vectors.std()) if len(vectors) else 0.1, size=(len(itos), dim)).astype(np.float32)
    for i, vec in found.items():
        matrix[i] = vec
    matrix[itos.index(PAD)] = 0.0
    total = sum(counts.values())
    covered = sum(counts[itos[i]] for i in found)
    return matrix, {
        "vocab_coverage": round(len(found) / max(len(itos) - 1, 1), 6),
        "train_token_coverage": round(covered / total, 6) if total else 0.0,
        "dim": dim,
    }
