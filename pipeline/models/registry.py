"""Model registry: the model table (pipeline/families.py: name → family, head, the architecture's
identity; the family fixes the scheme and embedder) with its classes, and `build_model`.

Every model is `Classifier(embedder, head)`: a `WordEmbedder` (classic, scheme `vocab`), a
`TfidfEmbedder` (linear baselines, scheme `vocab`, with `LinearHead`) or an `EncoderEmbedder` (BERT
family, scheme `subword`) followed by one head of `heads.py`. The arch
kwargs of `models.<name>.arch` are validated against the embedder's and head's typed keyword
arguments (`resolve_arch`, pipeline/archs.py, torch-free so params load validates with the same
rule); an unknown or ill-typed key is a TextbenchError naming `models.<name>.arch.<key>`.
Train settings are not the registry's business: they come from params.yaml only (`train:` <
`families.<family>.train` < `models.<name>.train`, Config.train_for; profiles/paper.yaml spells out
the published ones).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.archs import resolve_arch
from pipeline.errors import TextbenchError
from pipeline.families import FAMILY_TABLE, MODELS, SCHEME_OF_FAMILY, spec
from pipeline.models.bert import EncoderEmbedder, load_encoder_model
from pipeline.models.classic import WordEmbedder
from pipeline.models.heads import CNNHead, DPCNNHead, PoolHead, RNNHead, TransformerHead
from pipeline.models.linear import LinearHead, TfidfEmbedder


@dataclass(frozen=True)
class BuildContext:
    """What a model needs from the data: label count, vocabulary, and (BERT) the encoder.

    `encoder` is the params reference used to load pretrained weights; `encoder_config` (the
    saved AutoConfig dict) replaces it when rebuilding a trained model offline.
    """

    num_labels: int
    vocab_size: int
    pad_id: int
    max_len: int
    embeddings: np.ndarray | None = None
    encoder: str | None = None
    encoder_config: dict[str, Any] | None = None


@dataclass(frozen=True)
class ModelEntry:
    family: str  # "classic" | "linear" | "bert": params.yaml `families.<family>` applies
    head: type[nn.Module]
    arch: dict[str, Any] = field(default_factory=dict)  # architecture identity, over the classes' defaults

    @property
    def scheme(self) -> str:
        """The token ids it reads: `vocab` (classic, linear) or `subword` (bert)."""
        return SCHEME_OF_FAMILY[self.family]

    @property
    def embedder(self) -> type[nn.Module]:
        return EMBEDDERS[FAMILY_TABLE[self.family].embedder]


class Classifier(nn.Module):
    """embedder → head; `forward(input_ids, attention_mask) -> logits [B, C]`."""

    def __init__(self, embedder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.embedder = embedder
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedder(input_ids, attention_mask), attention_mask).float()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embedder.input_embeddings()

    def lr_scale(self, name: str) -> float:
        """Learning-rate multiplier of parameter `name` (layer-wise decay for encoders)."""
        return self.embedder.lr_scale(name.removeprefix("embedder.")) if name.startswith("embedder.") else 1.0


class FeatureClassifier(nn.Module):
    """The head of a frozen-encoder `Classifier`, fed the encoder's precomputed token states
    (pipeline/train/features.py). Its state-dict keys (`head.*`) are the Classifier's."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(states, attention_mask).float()

    def lr_scale(self, name: str) -> float:
        return 1.0


HEADS: dict[str, type[nn.Module]] = {
    c.__name__: c for c in (CNNHead, DPCNNHead, PoolHead, RNNHead, TransformerHead, LinearHead)
}
EMBEDDERS: dict[str, type[nn.Module]] = {c.__name__: c for c in (WordEmbedder, TfidfEmbedder, EncoderEmbedder)}
# the model table (pipeline/families.py) with its class names made classes
REGISTRY: dict[str, ModelEntry] = {name: ModelEntry(s.family, HEADS[s.head], s.arch) for name, s in MODELS.items()}


def entry(name: str) -> ModelEntry:
    """The registry entry, or an error listing every known model."""
    spec(name)  # refuses an unknown one
    return REGISTRY[name]


def _kwargs(cls: type) -> dict[str, inspect.Parameter]:
    return {
        p.name: p
        for p in inspect.signature(cls.__init__, eval_str=True).parameters.values()
        if p.kind is p.KEYWORD_ONLY
    }


def build_model(
    name: str, ctx: BuildContext, arch: dict[str, Any], scheme: str | None = None
) -> tuple[Classifier, dict[str, Any]]:
    """Build `name` for data described by `ctx`; returns the model and its resolved arch kwargs.

    `scheme`, when given, is the tokenization the data was made with; a mismatch (a BERT model
    on `vocab` ids or a classic model on `subword` ids) is an error.
    """
    e = entry(name)
    if scheme is not None and scheme != e.scheme:
        raise TextbenchError(
            f"model '{name}' needs scheme '{e.scheme}' token ids, got '{scheme}' "
            f"(data/tokenized/<ds>/{e.scheme} is what it trains on)"
        )
    kw = resolve_arch(name, arch)
    if ctx.embeddings is not None and e.family == "classic":
        kw["embed_dim"] = int(ctx.embeddings.shape[1])  # pretrained vectors fix the width
    emb_kw = {k: kw[k] for k in _kwargs(e.embedder)}
    head_kw = {k: kw[k] for k in _kwargs(e.head)}
    try:
        if e.scheme == "subword":
            embedder: nn.Module = EncoderEmbedder(load_encoder_model(ctx.encoder, ctx.encoder_config), **emb_kw)
        elif e.family == "linear":
            embedder = TfidfEmbedder(ctx.vocab_size, ctx.pad_id, **emb_kw)
        else:
            embedder = WordEmbedder(ctx.vocab_size, ctx.pad_id, ctx.max_len, ctx.embeddings, **emb_kw)
        head = e.head(embedder.out_dim, ctx.num_labels, **head_kw)
    except ValueError as err:
        raise TextbenchError(f"models.{name}.arch: {err}") from None
    return Classifier(embedder, head), kw
