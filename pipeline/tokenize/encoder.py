"""`TextEncoder`: text → token ids, shared by the tokenize stage and by prediction.

The stage and `load_encoder(dir).encode` run the same `encode_batch`, so a model sees at
prediction time exactly the ids it was trained on: same cleaning, tokenization and truncation.

Truncation keeps `max_len` ids including special tokens. `head` keeps the first pieces;
`head+tail` keeps the first k and the last (budget - k), with k = round(budget * 128 / 510),
the 128 + 382 split that Sun et al. ("How to Fine-Tune BERT for Text Classification", 2019)
found best for 512-token BERT, scaled to the configured budget.
"""

from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod
from dataclasses import dataclass

from pipeline.errors import TextbenchError

HEAD_SHARE = 128 / 510
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: str | None) -> str:
    """NFKC-normalise (full-width → half-width), turn control characters into spaces, collapse whitespace."""
    text = text or ""
    if not text.isascii():  # NFKC leaves ASCII unchanged; skipping it is most of clean()'s speed on English
        text = unicodedata.normalize("NFKC", text)
    return " ".join(_CONTROL.sub(" ", text).split())


def has_content(text: str | None) -> bool:
    """Whether `text` holds anything a tokenizer can make a token of: once cleaned, a character that is
    not whitespace, a control or a format character (zero-width spaces, soft hyphens, BOMs). What prepare
    can know without a tokenizer; `EncodedBatch.classifiable` is the rule on the model's own tokens."""
    text = clean(text)
    if text.isascii():
        return bool(text)  # clean() removed ASCII controls and whitespace
    return any(not unicodedata.category(c).startswith(("Z", "C")) for c in text)


def clean_normalizer(then=None):
    """`clean` as a `tokenizers` normalizer, run before `then` (a tokenizer's own): exported tokenizers
    then see the text textbench's models were trained on."""
    from tokenizers import Regex, normalizers

    steps = [
        normalizers.NFKC(),
        normalizers.Replace(Regex(_CONTROL.pattern), " "),
        normalizers.Replace(Regex(r"\s+"), " "),
        normalizers.Strip(),
    ]
    return normalizers.Sequence(steps + ([then] if then is not None else []))


def head_tokens(budget: int, truncation: str) -> int:
    """How many leading pieces a truncated document keeps (the rest of `budget` comes from its tail)."""
    return budget if truncation == "head" else round(budget * HEAD_SHARE)


def truncate(pieces: list[int], budget: int, head: int) -> list[int]:
    """Keep at most `budget` pieces: the first `head` and the last `budget - head`."""
    if len(pieces) <= budget:
        return pieces
    return pieces[:head] + pieces[len(pieces) - (budget - head) :]


@dataclass
class EncodedBatch:
    """ids as written (truncated, with specials); per document: length before truncation, content pieces, [UNK]s;
    `bag_ids`: the same truncated to the bags' longer cap, when one was asked for."""

    ids: list[list[int]]
    full_lengths: list[int]
    pieces: list[int]
    unks: list[int]
    bag_ids: list[list[int]] | None = None

    @property
    def classifiable(self) -> list[bool]:
        """The one "no text" rule: a document none of whose pieces is a token the model knows (no pieces,
        or only [UNK]: zero-width spaces, control characters, emoji or `!!!` outside the vocabulary) has
        nothing to classify. predict leaves it unlabelled, the API answers 422, explain refuses it."""
        return [p > u for p, u in zip(self.pieces, self.unks)]


class TextEncoder(ABC):
    """Cleans, tokenizes and truncates texts to ids; `meta` is the scheme's meta.json settings."""

    def __init__(self, max_len: int, truncation: str, unk_id: int, prefix: list[int], suffix: list[int]):
        self.truncation, self.unk_id = truncation, unk_id
        self.prefix, self.suffix = prefix, suffix
        self.set_max_len(max_len)

    def set_max_len(self, max_len: int) -> None:
        """Truncate to `max_len` ids from now on (the tokenize stage chooses it from the train lengths)."""
        budget = max_len - len(self.prefix) - len(self.suffix)
        if budget < 1:
            raise TextbenchError(
                f"max_len {max_len} leaves no room beside {len(self.prefix) + len(self.suffix)} special tokens"
            )
        self.max_len, self.budget, self.head = max_len, budget, head_tokens(budget, self.truncation)

    @abstractmethod
    def pieces(self, texts: list[str]) -> list[list[int]]:
        """Ids of each cleaned text, without special tokens and untruncated."""

    @abstractmethod
    def tokens(self, ids: list[int]) -> list[str]:
        """Token strings of `ids` (for explanations and round-trip checks)."""

    def encode_batch(self, texts: list[str], bag_len: int | None = None) -> EncodedBatch:
        """Encode with the statistics the stage records (lengths before truncation, [UNK] counts), and
        with `bag_len` also to that many ids (the bags of n-grams' cap)."""
        all_pieces = self.pieces(texts)
        extra = len(self.prefix) + len(self.suffix)
        bag = None
        if bag_len is not None:
            budget = bag_len - extra
            head = head_tokens(budget, self.truncation)
            bag = [self.prefix + truncate(p, budget, head) + self.suffix for p in all_pieces]
        return EncodedBatch(
            ids=[self.prefix + truncate(p, self.budget, self.head) + self.suffix for p in all_pieces],
            full_lengths=[len(p) + extra for p in all_pieces],
            pieces=[len(p) for p in all_pieces],
            unks=[p.count(self.unk_id) for p in all_pieces],
            bag_ids=bag,
        )

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Ids exactly as the tokenize stage writes them."""
        return self.encode_batch(texts).ids

    def close(self) -> None:  # noqa: B027 - a hook: most encoders hold no workers
        """Release worker processes, if any."""
