"""Input side of the classic models (scheme `vocab`): word/char embeddings, optionally pretrained
(`embeddings.npy` of the tokenize stage), frozen or fine-tuned, plus fastText's hashed n-gram
buckets and the Transformer's learned positions. A head from `heads.py` sits on top.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# multipliers of fastText's n-gram hash (any large odd constants give a stable bucket map)
_HASH = (14918087, 18408749)


class WordEmbedder(nn.Module):
    """ids [B, T] → vectors [B, T, embed_dim] (+ n-gram and position vectors when enabled)."""

    def __init__(self, vocab_size: int, pad_id: int, max_len: int, pretrained: np.ndarray | None, *,
                 embed_dim: int = 300, freeze_embeddings: bool = False, ngram_buckets: int = 0,
                 positions: bool = False) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        if pretrained is not None:
            self.embedding.weight.data.copy_(torch.from_numpy(np.asarray(pretrained, dtype=np.float32)))
        self.embedding.weight.requires_grad = not freeze_embeddings
        self.ngram_buckets = ngram_buckets
        if ngram_buckets:  # one table shared by bigrams and trigrams, like fastText's -bucket
            self.ngrams = nn.Embedding(ngram_buckets, embed_dim)
        self.positions = nn.Embedding(max_len, embed_dim) if positions else None
        self.out_dim = embed_dim

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.embedding(input_ids)
        if self.ngram_buckets:
            x = x + self._ngrams(input_ids, attention_mask)
        if self.positions is not None:
            pos = torch.arange(input_ids.size(1), device=input_ids.device).clamp(max=self.positions.num_embeddings - 1)
            x = x + self.positions(pos).unsqueeze(0)
        return x

    def _ngrams(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Bigram and trigram vectors ending at each position (zero where the n-gram has padding)."""
        prev1 = torch.nn.functional.pad(ids, (1, 0))[:, :-1]
        prev2 = torch.nn.functional.pad(ids, (2, 0))[:, :-2]
        pos = torch.arange(ids.size(1), device=ids.device).unsqueeze(0)
        m = mask.bool()
        bi = ((prev1 * _HASH[0]) ^ ids) % self.ngram_buckets
        tri = ((prev2 * _HASH[1]) ^ (prev1 * _HASH[0]) ^ ids) % self.ngram_buckets
        vec = self.ngrams(bi) * (m & (pos >= 1)).unsqueeze(-1) + self.ngrams(tri) * (m & (pos >= 2)).unsqueeze(-1)
        return vec

    def input_embeddings(self) -> nn.Embedding:
        return self.embedding

    def lr_scale(self, name: str) -> float:
        return 1.0
