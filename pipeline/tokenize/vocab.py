"""Word/char ids for the classic models (TextCNN, TextRNN, FastText, DPCNN, Transformer, RNN).

Tokens, after `clean` and lowercasing:
- English: `WORD_PATTERN` matches — runs of letters/digits, joined across inner ', - or .
  (`don't`, `mid-year`, `u.s.`, `3.5`); all other punctuation is dropped.
- Chinese `char`: every non-space character. Chinese `jieba`: jieba's words (HMM on), spaces dropped,
  segmented in a `multiprocessing` pool of `tokenize.workers` processes (order preserved).
The vocabulary comes from the train split only: `<pad>`=0, `<unk>`=1, then tokens with count ≥
`min_freq` by count descending, ties by token, cut at `max_size` entries in all.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.artifacts import TokenizedMeta, read_vocab, tokenizer_fix
from pipeline.errors import TextbenchError
from pipeline.tokenize.encoder import TextEncoder, clean

PAD, UNK = "<pad>", "<unk>"
WORD_PATTERN = r"[^\W_]+(?:['\-.][^\W_]+)*"
_WORD = re.compile(WORD_PATTERN)


def _init_jieba() -> None:
    """Load jieba's dictionary once (per process), with its chatty logger silenced."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()


def _jieba_words(texts: list[str]) -> list[list[str]]:
    import jieba

    return [[w for w in jieba.lcut(t) if not w.isspace()] for t in texts]


def _context() -> Any:
    """fork where the OS has it: workers start at once, inherit the loaded dictionary and need no
    importable __main__; the children only run jieba (pure Python), so the parent's threads are harmless."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class Segmenter:
    """Cleaned, lowercased text → token strings; jieba runs in a worker pool when workers > 1."""

    def __init__(self, language: str, zh_mode: str = "char", workers: int = 1):
        self.mode = "word" if language == "en" else zh_mode
        self.workers = workers
        self._pool: Any = None
        if self.mode == "jieba":
            _init_jieba()

    def __call__(self, texts: list[str]) -> list[list[str]]:
        texts = [clean(t).lower() for t in texts]
        if self.mode == "word":
            return [_WORD.findall(t) for t in texts]
        if self.mode == "char":
            return [[c for c in t if not c.isspace()] for t in texts]
        if self.workers == 1:
            return _jieba_words(texts)
        if self._pool is None:
            self._pool = _context().Pool(self.workers, initializer=_init_jieba)
        size = -(-len(texts) // (self.workers * 4)) or 1
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        return [words for chunk in self._pool.map(_jieba_words, chunks) for words in chunk]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None


def build_vocab(counts: Counter[str], max_size: int, min_freq: int) -> list[str]:
    """Token list in id order: specials, then by count desc, token asc; at most `max_size` entries."""
    kept = sorted(
        (t for t, c in counts.items() if c >= min_freq and t not in (PAD, UNK)), key=lambda t: (-counts[t], t)
    )
    return [PAD, UNK] + kept[: max_size - 2]


class VocabEncoder(TextEncoder):
    """Segmenter + token→id table; unknown tokens map to `<unk>`, no special tokens are added."""

    def __init__(self, itos: list[str], segmenter: Segmenter, max_len: int, truncation: str):
        self.itos, self.segmenter = itos, segmenter
        self.stoi = {t: i for i, t in enumerate(itos)}
        super().__init__(max_len, truncation, self.stoi[UNK], [], [])

    @classmethod
    def from_dir(cls, directory: Path, meta: TokenizedMeta) -> VocabEncoder:
        fix = tokenizer_fix(directory)
        path = directory / str(meta.vocab_file)
        itos = read_vocab(path, fix)
        if len(itos) != meta.vocab_size or itos[:2] != [PAD, UNK]:
            raise TextbenchError(
                f"{path}: {len(itos)} tokens starting {itos[:2]}, but meta.json says vocab_size "
                f"{meta.vocab_size} starting {[PAD, UNK]}; {fix}"
            )
        return cls(itos, Segmenter(meta.language, meta.zh_mode), meta.max_len, meta.truncation)

    def pieces(self, texts: list[str]) -> list[list[int]]:
        unk = self.unk_id
        return [[self.stoi.get(t, unk) for t in toks] for toks in self.segmenter(texts)]

    def tokens(self, ids: list[int]) -> list[str]:
        return [self.itos[int(i)] for i in ids]

    def close(self) -> None:
        self.segmenter.close()
