"""Input side of the BERT family (scheme `subword`): a Hugging Face encoder whose hidden states
feed a head from `heads.py` (bert = pooled linear, bert_cnn = TextCNN head, ...).

At training time the encoder's weights come from `resolve_encoder(datasets.<ds>.encoder)`; a
trained model rebuilds it offline from the AutoConfig dict saved in its config.json.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from pipeline.errors import TextbenchError
from pipeline.models.bounds import Decay
from pipeline.pretrained import offline_hint, resolve_encoder

_LAYER = re.compile(r"\.layers?\.(\d+)\.")


def load_encoder_model(ref: str | None, config: dict[str, Any] | None) -> nn.Module:
    """The encoder: from the saved AutoConfig dict (no download) if given, else pretrained `ref`."""
    from transformers import AutoConfig, AutoModel

    if config is not None:
        cfg = dict(config)
        return AutoModel.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
    assert ref is not None, "a BERT-family model needs datasets.<ds>.encoder"
    try:
        return AutoModel.from_pretrained(resolve_encoder(ref))
    except (OSError, ValueError) as e:
        raise TextbenchError(f"{offline_hint(ref)} ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None


class EncoderEmbedder(nn.Module):
    """ids [B, T] → the encoder's last hidden states [B, T, H]."""

    def __init__(self, encoder: nn.Module, *, freeze_encoder: bool = False, layer_lr_decay: Decay = 1.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoder.requires_grad_(not freeze_encoder)
        self.layer_lr_decay = layer_lr_decay
        self.num_layers = int(encoder.config.num_hidden_layers)
        self.out_dim = int(encoder.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def input_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    def lr_scale(self, name: str) -> float:
        """Layer-wise lr decay: top layer × decay, each lower layer × decay again, embeddings lowest."""
        d, n = self.layer_lr_decay, self.num_layers
        if d == 1.0:
            return 1.0
        if match := _LAYER.search(name):
            return d ** (n - int(match.group(1)))
        return d ** (n + 1) if "embeddings" in name else 1.0

    def hf_config(self) -> dict[str, Any]:
        """The encoder's AutoConfig as a JSON-able dict, enough to rebuild it offline."""
        return self.encoder.config.to_dict()
