"""Registered model names, their family and tokenization scheme — without importing torch.

params.yaml validation (pipeline/config.py) needs the model names and families, and loading the
params must stay cheap (download/prepare/profile never touch torch). pipeline/models/registry.py
builds the models and checks at import that it registers exactly these names in these families.

Each model belongs to one family, and each family reads one tokenization scheme: `classic` (neural
models on scheme-`vocab` word/char ids), `linear` (TF-IDF + linear classifier baselines, also on
scheme-`vocab` ids, fitted by scikit-learn) and `bert` (the BERT family, scheme `subword`).
params.yaml's `families.<family>` sets arch and train for every member at once (Config.arch_for /
Config.train_for).
"""

from __future__ import annotations

from pipeline.errors import TextbenchError

SCHEME_OF_FAMILY: dict[str, str] = {"classic": "vocab", "linear": "vocab", "bert": "subword"}
MEMBERS: dict[str, tuple[str, ...]] = {
    "classic": ("textcnn", "textrnn", "textrnn_att", "textrcnn", "fasttext", "dpcnn", "transformer", "rnn", "lstm"),
    "linear": ("tfidf_svm", "tfidf_lr"),
    "bert": ("bert", "bert_cnn", "bert_rnn", "bert_lstm", "bert_fnn", "bert_rcnn", "bert_dpcnn"),
}
FAMILY: dict[str, str] = {m: f for f, models in MEMBERS.items() for m in models}  # model → family
SCHEMES: dict[str, str] = {m: SCHEME_OF_FAMILY[f] for m, f in FAMILY.items()}  # model → scheme
FAMILIES: tuple[str, ...] = tuple(MEMBERS)
# bags of n-grams: order-free, so they read whole documents (datasets.<ds>.bag_max_len ids of scheme
# vocab, tokenize `bag_ids`), not the sequence models' max_len
WHOLE_DOCUMENT: tuple[str, ...] = ("tfidf_svm", "tfidf_lr", "fasttext")
# train keys a family's training reads, where not all of them (None = all): what its fingerprint hashes
TRAIN_KEYS: dict[str, tuple[str, ...] | None] = {
    "classic": None,
    "bert": None,
    "linear": ("class_weights", "select_metric", "max_train_samples"),
}


def known_models() -> str:
    return ", ".join(sorted(SCHEMES))


def family_of(model: str) -> str:
    """`classic`, `linear` or `bert`; an unknown model is an error listing the known ones."""
    if model not in FAMILY:
        raise TextbenchError(f"unknown model '{model}': known models are {known_models()}")
    return FAMILY[model]


def members(family: str) -> list[str]:
    """The registered models of `family`, in registry order."""
    return list(MEMBERS[family])


def describe_families() -> str:
    """`classic (scheme vocab: textcnn, ...), linear (...), bert (...)` for error messages."""
    return ", ".join(f"{f} (scheme {SCHEME_OF_FAMILY[f]}: {', '.join(ms)})" for f, ms in MEMBERS.items())
