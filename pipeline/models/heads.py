"""Classifier heads over a sequence of vectors [B, T, D] with a padding mask [B, T] → logits [B, C].

The same heads sit on word embeddings (classic models) and on a BERT encoder's hidden states
(hybrids), so TextCNN and bert_cnn, TextRNN and bert_rnn... share one implementation each.
Every head masks padding: pooling never sees pad positions and RNNs read the true last step.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.bounds import Dropout, Size, Sizes

NEG = -1e4  # "minus infinity" that survives bf16/fp16


def pool(x: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Masked sequence pooling: `cls` (first position), `mean` or `max` over real tokens."""
    if how == "cls":
        return x[:, 0]
    m = mask.unsqueeze(-1).to(x.dtype)
    if how == "mean":
        return (x * m).sum(1) / m.sum(1).clamp(min=1.0)
    return x.masked_fill(m == 0, NEG).max(1).values


class PoolHead(nn.Module):
    """Pool, then an MLP with `hidden` units per layer (none = linear), for bert, bert_fnn, fasttext."""

    def __init__(
        self,
        in_dim: int,
        num_labels: int,
        *,
        pooling: Literal["cls", "mean", "max"] = "cls",
        hidden: tuple[Size, ...] = (),
        dropout: Dropout = 0.1,
    ) -> None:
        super().__init__()
        self.pooling = pooling
        layers: list[nn.Module] = []
        dim = in_dim
        for h in hidden:
            layers += [nn.Dropout(dropout), nn.Linear(dim, h), nn.ReLU()]
            dim = h
        self.mlp = nn.Sequential(*layers, nn.Dropout(dropout), nn.Linear(dim, num_labels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.mlp(pool(x, mask, self.pooling))


class CNNHead(nn.Module):
    """Kim (2014): parallel convolutions of several widths, masked max-over-time, dropout, linear."""

    def __init__(
        self,
        in_dim: int,
        num_labels: int,
        *,
        kernel_sizes: Sizes = (2, 3, 4),
        num_filters: Size = 256,
        dropout: Dropout = 0.5,
    ) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(in_dim, num_filters, k) for k in kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_filters * len(kernel_sizes), num_labels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        kmax = max(c.kernel_size[0] for c in self.convs)
        if x.size(1) < kmax:  # documents shorter than the widest kernel
            x = F.pad(x, (0, 0, 0, kmax - x.size(1)))
        x = x.transpose(1, 2)
        lengths = mask.sum(1, keepdim=True)
        feats = []
        for conv in self.convs:
            h = F.relu(conv(x))  # [B, F, T-k+1]
            # window t is real if it starts on a real token (at least one window per document)
            pos = torch.arange(h.size(2), device=h.device).unsqueeze(0)
            real = pos < torch.clamp(lengths - conv.kernel_size[0] + 1, min=1)
            feats.append(h.masked_fill(~real.unsqueeze(1), NEG).max(2).values)
        return self.fc(self.dropout(torch.cat(feats, 1)))


class RNNHead(nn.Module):
    """RNN/LSTM/GRU over length-aware padded runs, read out by `last` true step, masked `attention`
    (TextRNN_Att) or `max` over [states; input] (TextRCNN)."""

    def __init__(
        self,
        in_dim: int,
        num_labels: int,
        *,
        cell: Literal["lstm", "gru", "rnn"] = "lstm",
        hidden: Size = 128,
        layers: Size = 2,
        bidirectional: bool = True,
        readout: Literal["last", "attention", "max"] = "last",
        dropout: Dropout = 0.5,
    ) -> None:
        super().__init__()
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
        self.rnn = rnn_cls(
            in_dim,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.readout = readout
        out = hidden * (2 if bidirectional else 1)
        if readout == "attention":
            self.att = nn.Sequential(nn.Linear(out, out), nn.Tanh(), nn.Linear(out, 1, bias=False))
        if readout == "max":
            self.proj = nn.Sequential(nn.Linear(out + in_dim, out), nn.Tanh())
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(out, num_labels)

    def _states(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-position states [B, T, out] (real positions exact, pad positions arbitrary) and the readout
        of the true last step [B, out]. Each layer and direction runs padded on the fused CPU kernel (packed
        sequences take a slow generic path: 5-6x slower at 256 tokens); the backward direction reads each
        document reversed within its length, so it starts at the true last token and never reads padding."""
        rnn, T = self.rnn, x.size(1)
        last = (lengths - 1).clamp(min=0)
        rev = (last[:, None] - torch.arange(T, device=x.device)[None, :]) % T  # reversal within each length
        flip = rev[:, :, None]
        mode = {nn.LSTM: "LSTM", nn.GRU: "GRU", nn.RNN: "RNN_TANH"}[type(rnn)]
        h = x
        finals: list[torch.Tensor] = []
        for layer in range(rnn.num_layers):
            outs = []
            for suffix in ("", "_reverse")[: 2 if rnn.bidirectional else 1]:
                inp = h if not suffix else h.gather(1, flip.expand(-1, -1, h.size(2)))
                names = (f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}")
                names += (f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}")
                out = _run_cell(mode, inp, [getattr(rnn, n) for n in names], rnn.hidden_size)
                if suffix:  # back in document order; position 0 holds the state after the whole document
                    out = out.gather(1, flip.expand(-1, -1, out.size(2)))
                    finals.append(out[:, 0])
                else:
                    finals.append(out.gather(1, last[:, None, None].expand(-1, 1, out.size(2)))[:, 0])
                outs.append(out)
            h = torch.cat(outs, -1)
            top = finals[-len(outs) :]
            if layer + 1 < rnn.num_layers and rnn.dropout and self.training:
                h = F.dropout(h, rnn.dropout, True)
        return h, torch.cat(top, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        states, last = self._states(x, mask.sum(1).clamp(min=1))
        if self.readout == "last":
            return self.fc(self.dropout(last))
        if self.readout == "attention":
            scores = self.att(states).squeeze(-1).masked_fill(mask == 0, NEG)
            pooled = (torch.softmax(scores.float(), 1).to(states.dtype).unsqueeze(-1) * states).sum(1)
        else:
            pooled = pool(self.proj(torch.cat([states, x], -1)), mask, "max")
        return self.fc(self.dropout(pooled))


def _run_cell(mode: str, x: torch.Tensor, weights: list[torch.Tensor], hidden: int) -> torch.Tensor:
    """One unidirectional layer of `mode` over x [B, T, D] → outputs [B, T, hidden] (zero initial state)."""
    h0 = x.new_zeros(1, x.size(0), hidden)
    if mode == "LSTM":
        return torch.lstm(x, (h0, h0), weights, True, 1, 0.0, False, False, True)[0]
    if mode == "GRU":
        return torch.gru(x, h0, weights, True, 1, 0.0, False, False, True)[0]
    return torch.rnn_tanh(x, h0, weights, True, 1, 0.0, False, False, True)[0]


class DPCNNHead(nn.Module):
    """Johnson & Zhang (2017): region embedding, two convolutions, then pyramid blocks
    (pool /2 + two pre-activation convolutions + shortcut) until one position is left.
    Short inputs (e.g. 48-token titles) just take fewer blocks."""

    def __init__(
        self, in_dim: int, num_labels: int, *, num_filters: Size = 250, region: Size = 3, dropout: Dropout = 0.2
    ) -> None:
        super().__init__()
        self.region = nn.Conv1d(in_dim, num_filters, region, padding=region // 2)
        self.conv = nn.Conv1d(num_filters, num_filters, 3, padding=1)
        self.pool = nn.MaxPool1d(3, stride=2, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_filters, num_labels)

    def _convs(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv(F.relu(self.conv(F.relu(h))))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x * mask.unsqueeze(-1).to(x.dtype)  # pad positions contribute zeros
        h = self.region(x.transpose(1, 2))
        h = h + self._convs(h)
        while h.size(2) > 1:
            h = self.pool(h)
            h = h + self._convs(h)
        return self.fc(self.dropout(h.max(2).values))


class TransformerHead(nn.Module):
    """A small pre-norm Transformer encoder (padding masked), pooled by masked mean or first token.
    `attn_dropout` sets the attention probabilities' dropout apart from the residual/feed-forward `dropout`."""

    def __init__(
        self,
        in_dim: int,
        num_labels: int,
        *,
        layers: Size = 2,
        heads: Size = 5,
        ff_dim: Size = 1024,
        pooling: Literal["cls", "mean", "max"] = "mean",
        dropout: Dropout = 0.1,
        attn_dropout: Dropout | None = None,
    ) -> None:
        super().__init__()
        if in_dim % heads:
            raise ValueError(f"embed_dim {in_dim} must be divisible by heads {heads}")
        layer = nn.TransformerEncoderLayer(in_dim, heads, ff_dim, dropout, batch_first=True, norm_first=True)
        # dropout on the attention probabilities (None = `dropout`, as torch's layer does): any p > 0 keeps
        # CPU attention off the fused kernel, 1.8x the cost of a step at 256 tokens (bench/RESULTS.md)
        layer.self_attn.dropout = dropout if attn_dropout is None else attn_dropout
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(in_dim)
        self.pooling = pooling
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, num_labels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.encoder(x, src_key_padding_mask=mask == 0))
        return self.fc(pool(h, mask, self.pooling))
