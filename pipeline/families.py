"""Registered model names, their tokenization scheme and their family — without importing torch.

params.yaml validation (pipeline/config.py) needs the model names and families, and loading the
params must stay cheap (download/prepare/profile never touch torch). pipeline/models/registry.py
builds the models and checks at import that it registers exactly these names with these schemes.

A model's family follows from its scheme: `classic` = every scheme-`vocab` model (word/char ids),
`bert` = every scheme-`subword` model (the BERT family). params.yaml's `families.<family>` sets
arch and train for every member at once (Config.arch_for / Config.train_for).
"""

from __future__ import annotations

from pipeline.errors import TextbenchError

SCHEMES: dict[str, str] = {
    "textcnn": "vocab",
    "textrnn": "vocab",
    "textrnn_att": "vocab",
    "textrcnn": "vocab",
    "fasttext": "vocab",
    "dpcnn": "vocab",
    "transformer": "vocab",
    "rnn": "vocab",
    "lstm": "vocab",
    "bert": "subword",
    "bert_cnn": "subword",
    "bert_rnn": "subword",
    "bert_lstm": "subword",
    "bert_fnn": "subword",
    "bert_rcnn": "subword",
    "bert_dpcnn": "subword",
}

FAMILY_OF_SCHEME: dict[str, str] = {"vocab": "classic", "subword": "bert"}
FAMILIES: tuple[str, ...] = tuple(FAMILY_OF_SCHEME.values())


def known_models() -> str:
    return ", ".join(sorted(SCHEMES))


def family_of(model: str) -> str:
    """`classic` or `bert`; an unknown model is an error listing the known ones."""
    if model not in SCHEMES:
        raise TextbenchError(f"unknown model '{model}': known models are {known_models()}")
    return FAMILY_OF_SCHEME[SCHEMES[model]]


def members(family: str) -> list[str]:
    """The registered models of `family`, in registry order."""
    return [m for m, scheme in SCHEMES.items() if FAMILY_OF_SCHEME[scheme] == family]


def describe_families() -> str:
    """`classic (scheme vocab: textcnn, ...), bert (scheme subword: bert, ...)` for error messages."""
    return ", ".join(f"{f} (scheme {s}: {', '.join(members(f))})" for s, f in FAMILY_OF_SCHEME.items())
