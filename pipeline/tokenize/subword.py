"""WordPiece/BPE ids from the encoder's own HF fast tokenizer (for the BERT family).

The padding and truncation stored in tokenizer.json are switched off so the stage alone decides
the length ([CLS] + pieces + [SEP]). For BERT-style tokenizers (BertNormalizer, BertPreTokenizer,
WordPiece) every step is local to a space-separated word, and ASCII punctuation is always split
off, so the pieces of a text are the concatenation of its chunks' pieces: each distinct chunk is
tokenized once and then served from a cache (a corpus repeats its words constantly; this, not
batching, is most of the stage's speed: the Rust normalizer dominates the plain path). Any other
tokenizer encodes whole texts in batches. Both give the tokenizer's exact ids (tested).
"""

from __future__ import annotations

import hashlib
import re
from itertools import chain
from pathlib import Path
from typing import Any

from pipeline.artifacts import TokenizedMeta, tokenizer_fix
from pipeline.errors import TextbenchError
from pipeline.pretrained import offline_hint, resolve_encoder
from pipeline.tokenize.encoder import TextEncoder, clean

CACHE_WORDS = 1_000_000
# Chunks without spaces/control characters; each ASCII punctuation mark alone (BertPreTokenizer
# splits them anyway).
_CHUNK = re.compile(r"[!-/:-@\[-`{-~]|[^\s\x00-\x1f\x7f-\x9f!-/:-@\[-`{-~]+")


def load_hf_tokenizer(ref: str, name: str) -> Any:
    """AutoTokenizer for a resolved reference; any failure is one TextbenchError with the offline hint."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(ref)
    except Exception as e:  # transformers raises OSError, ValueError, HF hub errors...
        detail = (str(e).strip().splitlines() or [""])[0][:200]
        raise TextbenchError(f"{offline_hint(name)} [{type(e).__name__}: {detail}]") from None
    if not getattr(tok, "is_fast", False):
        raise TextbenchError(f"encoder '{name}' has no fast (Rust) tokenizer; give a checkpoint with tokenizer.json")
    return tok


class SubwordEncoder(TextEncoder):
    """A fast HF tokenizer with [CLS]/[SEP] (or <s>/</s>) added around the truncated pieces."""

    def __init__(self, tokenizer: Any, encoder: str, max_len: int, truncation: str):
        from tokenizers import Tokenizer

        self.hf = tokenizer
        self.encoder = encoder
        self.backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self.backend.no_padding()
        self.backend.no_truncation()
        first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        if first is None or last is None or tokenizer.unk_token_id is None:
            raise TextbenchError(f"encoder '{encoder}': tokenizer lacks [CLS]/[SEP]/[UNK] (or <s>/</s>/<unk>) tokens")
        super().__init__(max_len, truncation, tokenizer.unk_token_id, [first], [last])
        parts = (self.backend.normalizer, self.backend.pre_tokenizer, self.backend.model)
        word_local = tuple(type(p).__name__ for p in parts) == ("BertNormalizer", "BertPreTokenizer", "WordPiece")
        self.word_cache: dict[str, list[int]] | None = {} if word_local else None

    @classmethod
    def from_config(cls, encoder: str, max_len: int, truncation: str) -> SubwordEncoder:
        """Load `datasets.<ds>.encoder` (e.g. 'minilm', a local dir, a cached hub name)."""
        return cls(load_hf_tokenizer(resolve_encoder(encoder), encoder), encoder, max_len, truncation)

    @classmethod
    def from_dir(cls, directory: Path, meta: TokenizedMeta) -> SubwordEncoder:
        """Rebuild from the tokenizer files saved beside meta.json; refuse if they changed since."""
        enc = cls(load_hf_tokenizer(str(directory), str(directory)), str(meta.encoder), meta.max_len, meta.truncation)
        if enc.identity() != meta.tokenizer_sha256:
            raise TextbenchError(
                f"{directory}: tokenizer files differ from the ones meta.json was written with; "
                f"{tokenizer_fix(directory)}"
            )
        return enc

    def identity(self) -> str:
        """sha256 of the full tokenizer definition (vocab, normalizer, pre-tokenizer, post-processor)."""
        return hashlib.sha256(self.backend.to_str().encode()).hexdigest()

    def pieces(self, texts: list[str]) -> list[list[int]]:
        cache = self.word_cache
        if cache is None:
            return [e.ids for e in self.backend.encode_batch_fast([clean(t) for t in texts], add_special_tokens=False)]
        # ASCII text: clean() would only blank controls and collapse spaces, which _CHUNK treats as separators anyway
        words = [_CHUNK.findall(t.lower() if t.isascii() else clean(t)) for t in (x or "" for x in texts)]
        new = [w for w in {w: None for ws in words for w in ws} if w not in cache]
        if len(cache) + len(new) > CACHE_WORDS:
            cache.clear()
            new = list({w: None for ws in words for w in ws})
        self._learn(new)
        get = cache.__getitem__
        return [list(chain.from_iterable(map(get, ws))) for ws in words]

    def _learn(self, words: list[str]) -> None:
        """Cache the ids of new chunks. An ASCII chunk without spaces or punctuation is one pre-token whose
        BertNormalizer output is just its lowercase, so WordPiece alone gives its ids; others take the full path."""
        cache, wordpiece = self.word_cache, self.backend.model.tokenize
        assert cache is not None
        other = [w for w in words if not w.isascii()]
        cache.update((w, [t.id for t in wordpiece(w.lower())]) for w in words if w.isascii())
        cache.update(zip(other, (e.ids for e in self.backend.encode_batch_fast(other, add_special_tokens=False))))

    def tokens(self, ids: list[int]) -> list[str]:
        return [self.backend.id_to_token(int(i)) or "" for i in ids]

    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def pad_id(self) -> int:
        return self.hf.pad_token_id if self.hf.pad_token_id is not None else 0

    def save(self, directory: Path) -> None:
        """Write the HF tokenizer files (save_pretrained) so a trained model can carry them."""
        self.hf.save_pretrained(str(directory))
