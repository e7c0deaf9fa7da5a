"""The linear baselines (family `linear`): TF-IDF of token-id n-grams → a linear classifier, as torch.

scikit-learn fits them (pipeline/train/linear.py); inference is this module, so load_trained, the
Predictor variants, serve and explain treat them like every other model. On scheme-`vocab` ids the
n-grams are word n-grams (English) or character n-grams (Chinese, `zh_mode: char`).

An n-gram of ids (a1..an) has the key Σ ai·V^(n-i) (V = vocabulary size): ids are ≥ 1 (padding,
id 0, is never part of an n-gram), so unigram, bigram and trigram keys never collide. `keys` holds
the fitted n-grams' keys sorted (plus a sentinel that matches nothing) and `idf` their idf; a
document's features are found by `torch.searchsorted`, an unseen n-gram contributes nothing. The
TF-IDF is sklearn's TfidfTransformer: tf = count (1 + ln count with `sublinear_tf`), × idf, L2-
normalised per document. Both buffers are sized by the fitted vocabulary, so loading a state dict
resizes them (and the classifier's weights): config.json alone rebuilds the model.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import torch
from torch import nn

from pipeline.models.bounds import Costs, Count, NgramMax, Size

SENTINEL = torch.iinfo(torch.int64).max  # larger than any n-gram key: searchsorted's "not found"


class _Resizable(nn.Module):
    """Loading a state dict first gives this module's (and its children's) parameters and buffers the saved shapes."""

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        for name, tensor in [*self.named_parameters(), *self.named_buffers()]:
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != tensor.shape:
                tensor.data = torch.empty(saved.shape, dtype=tensor.dtype, device=tensor.device)
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                layer.in_features = layer.weight.shape[1]
        super()._load_from_state_dict(state_dict, prefix, *args)


class TfidfEmbedder(_Resizable):
    """ids [B, T] → L2-normalised TF-IDF [B, F] over the fitted n-gram keys.

    `min_df` and `max_features` shape the fitted vocabulary (used when training: pipeline/train/linear.py)."""

    def __init__(
        self,
        vocab_size: int,
        pad_id: int,
        *,
        ngram_max: NgramMax = 2,
        sublinear_tf: bool = True,
        min_df: Size = 1,
        max_features: Count = 0,
    ) -> None:
        super().__init__()
        if pad_id != 0:
            raise ValueError(f"TF-IDF keys need the padding id 0, the vocabulary has {pad_id}")
        if vocab_size**ngram_max > SENTINEL:
            raise ValueError(
                f"ngram_max {ngram_max}: keys of a {vocab_size:,}-token vocabulary overflow int64; "
                f"lower ngram_max or tokenize.vocab.max_size"
            )
        self.vocab_size, self.ngram_max, self.sublinear_tf = vocab_size, ngram_max, sublinear_tf
        self.min_df, self.max_features = min_df, max_features
        self.register_buffer("keys", torch.tensor([SENTINEL], dtype=torch.int64))
        self.register_buffer("idf", torch.zeros(0))

    @property
    def out_dim(self) -> int:
        return self.idf.numel()

    def ngram_keys(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys [B, N·T] of the n-grams ending at each position, order-major (n = 1..N), and where they
        are real (every token of it unmasked and not padding)."""
        ids = ids.long()
        real = mask.bool() & (ids != 0)
        key, ok = ids, real
        keys, oks = [key], [ok]
        for n in range(1, self.ngram_max):
            prev = nn.functional.pad(ids, (n, 0))[:, : ids.size(1)]
            prev_ok = nn.functional.pad(real, (n, 0))[:, : ids.size(1)]
            key = key + prev * self.vocab_size**n  # a1·V^(n) + ... : the new first token takes the top place
            ok = ok & prev_ok
            keys.append(key)
            oks.append(ok)
        return torch.cat(keys, 1), torch.cat(oks, 1)

    def features(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(feature index [B, M], weight [B, M]) per n-gram occurrence: a feature's weights in a row sum
        to its L2-normalised tf-idf; unseen n-grams and padding weigh 0 (their index is then F, unused)."""
        key, ok = self.ngram_keys(ids, mask)
        idx = torch.searchsorted(self.keys, key)
        found = ok & (self.keys[idx] == key)
        # occurrences of each found n-gram in its row: group (row, feature) pairs by sorting, not by a
        # [B, M, M] comparison, so the cost grows with M log M and whole documents stay affordable
        rows = torch.arange(ids.size(0), device=idx.device).unsqueeze(1) * (self.out_dim + 1)
        _, group, counts = torch.unique(torch.where(found, rows + idx, -1), return_inverse=True, return_counts=True)
        count = torch.where(found, counts[group], 1).float()
        tf = 1 + torch.log(count) if self.sublinear_tf else count
        idf = torch.cat([self.idf, self.idf.new_zeros(1)])[idx]
        value = torch.where(found, tf * idf, torch.zeros_like(tf))  # the feature's tf-idf, at each occurrence
        norm = torch.sqrt((value * value / count).sum(1, keepdim=True)).clamp(min=1e-12)
        return idx, value / count / norm

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        idx, weight = self.features(ids, mask)
        x = torch.zeros(ids.size(0), self.out_dim + 1, dtype=weight.dtype, device=weight.device)
        return x.scatter_add(1, idx, weight)[:, :-1]

    def input_embeddings(self) -> nn.Embedding:
        raise TypeError("a TF-IDF model has no input embeddings (explain uses its exact linear attribution)")

    def lr_scale(self, name: str) -> float:
        return 1.0


class LinearHead(_Resizable):
    """TF-IDF [B, F] → decision scores / temperature [B, C]: the logits.

    `loss` names the classifier scikit-learn fits (squared_hinge: LinearSVC, log: one-vs-rest LogisticRegression),
    `c_grid` the inverse regularisation strengths tried (the best on dev is kept), `max_iter` the solver's
    iteration cap. `temperature` is fitted on dev NLL: one scalar, so the ranking is the classifier's."""

    def __init__(
        self,
        in_dim: int,
        num_labels: int,
        *,
        loss: Literal["squared_hinge", "log"] = "squared_hinge",
        c_grid: Costs = (0.3, 1.0, 3.0, 10.0, 30.0),
        max_iter: Size = 1000,
    ) -> None:
        super().__init__()
        self.loss, self.c_grid, self.max_iter = loss, c_grid, max_iter
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "initializing zero-element tensors": 0 columns until fitted
            self.linear = nn.Linear(in_dim, num_labels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.register_buffer("temperature", torch.ones(()))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.linear(x) / self.temperature
