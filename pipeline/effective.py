"""What a model will actually be built and trained with under a params file (`textbench params`).

The arch is `resolve_arch` over `Config.arch_for` — class defaults < the registry's arch <
`families.<family>.arch` < `models.<name>.arch`, exactly what `textbench train` builds — and the
train settings are `Config.train_for`: TrainConfig defaults < `train:` < `families.<family>.train`
< `models.<name>.train`.
"""

from __future__ import annotations

from typing import Any

import yaml

from pipeline.artifacts import TokenizedMeta
from pipeline.config import Config
from pipeline.families import TRAIN_KEYS
from pipeline.io import fingerprint


def effective(cfg: Config, model: str, dataset: str | None = None) -> dict[str, Any]:
    """{model, family, scheme, [dataset: {name, max_len, encoder}], arch, train} of `model`."""
    from pipeline.models.registry import entry, resolve_arch  # lazy: torch

    e = entry(model)
    out: dict[str, Any] = {"model": model, "family": e.family, "scheme": e.scheme}
    if dataset is not None:
        ds = cfg.dataset(dataset)
        max_len = ds.max_len or "auto, chosen per scheme from the train lengths (tokenize.max_len_auto)"
        out["dataset"] = {"name": dataset, "max_len": max_len, "encoder": ds.encoder}
    out["arch"] = resolve_arch(model, cfg.arch_for(model))
    out["train"] = cfg.train_for(model).model_dump(mode="json")
    return out


def effective_yaml(cfg: Config, model: str, dataset: str | None = None) -> str:
    """`effective` as YAML, keys in that order."""
    settings = effective(cfg, model, dataset)
    text = yaml.safe_dump(settings, sort_keys=False, allow_unicode=True, width=110)
    if dataset is not None and cfg.tokenize.vocab.embeddings and settings["scheme"] == "vocab":
        text += (
            f"# arch.embed_dim: the width of tokenize.vocab.embeddings ({cfg.tokenize.vocab.embeddings}) "
            f"replaces it when the vectors are used\n"
        )
    if (keys := TRAIN_KEYS[settings["family"]]) is not None:
        text += f"# train: a {settings['family']} model reads only {', '.join(keys)} (and the seed)\n"
    return text


def run_fingerprint(
    cfg: Config, dataset: str, model: str, seed: int, meta: TokenizedMeta, share: list[list[str]] | None = None
) -> str:
    """The identity of one training run: what the trainer records (metrics.json, config.json, its
    resumable state) and the flow extends with the code version into a job's fingerprint. It hashes the
    settings as `effective` resolves them from params (what the trainer derives from them and the data,
    a batch size from `train.batch_tokens` or an embedding width from pretrained vectors, follows from
    these), the seed, the tokenized data, its classes, multi-label the decision threshold setting, and for a
    learning curve's fit on part of train (`share`: its sorted document ids) which part."""
    from pipeline.models.registry import entry, resolve_arch  # lazy: torch

    arch = resolve_arch(model, cfg.arch_for(model))
    train = cfg.train_for(model).identity(entry(model).family)
    threshold = [cfg.dataset(dataset).threshold] if meta.label_mode == "multi" else []
    return fingerprint(model, arch, train, seed, meta.fingerprint, list(meta.labels), *threshold, *(share or []))
