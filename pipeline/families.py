"""The model table: every registered model's family, head and architecture identity — without torch.

This is the one list of models. params.yaml validation (pipeline/config.py, pipeline/archs.py) reads
it, and loading the params must stay cheap (download/prepare/profile never touch torch);
pipeline/models/registry.py builds the models from it (the head and embedder names become classes).
Families, members, schemes and each model's scheme are derived from `MODELS` and `FAMILY_TABLE` below.

Each model belongs to one family, and each family reads one tokenization scheme through one
embedder: `classic` (neural models on scheme-`vocab` word/char ids, `WordEmbedder`), `linear`
(TF-IDF + linear classifier baselines, also on scheme-`vocab` ids, fitted by scikit-learn,
`TfidfEmbedder`) and `bert` (the BERT family, scheme `subword`, `EncoderEmbedder`). params.yaml's
`families.<family>` sets arch and train for every member at once (Config.arch_for / Config.train_for).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import TextbenchError


@dataclass(frozen=True)
class Family:
    scheme: str  # the token ids its members read (data/tokenized/<ds>/<scheme>)
    embedder: str  # its embedder class (pipeline/models/{classic,linear,bert}.py)


@dataclass(frozen=True)
class ModelSpec:
    family: str  # params.yaml `families.<family>` applies
    head: str  # its head class (pipeline/models/heads.py, linear.py)
    arch: dict[str, Any] = field(default_factory=dict)  # architecture identity, over the classes' defaults


FAMILY_TABLE: dict[str, Family] = {
    "classic": Family("vocab", "WordEmbedder"),
    "linear": Family("vocab", "TfidfEmbedder"),
    "bert": Family("subword", "EncoderEmbedder"),
}
MODELS: dict[str, ModelSpec] = {
    # classic, scheme vocab (architectures of Kim 2014 / Chinese-Text-Classification-Pytorch)
    "textcnn": ModelSpec("classic", "CNNHead", {}),
    "textrnn": ModelSpec("classic", "RNNHead", {"hidden": 128, "layers": 2}),
    "textrnn_att": ModelSpec("classic", "RNNHead", {"readout": "attention"}),
    "textrcnn": ModelSpec("classic", "RNNHead", {"readout": "max", "hidden": 256, "layers": 1, "dropout": 0.5}),
    "fasttext": ModelSpec(
        "classic",
        "PoolHead",
        {"pooling": "mean", "hidden": (256,), "dropout": 0.5, "ngram_mode": "concat", "ngram_buckets": 200000},
    ),  # reference: 250,499; official fastText: 2M (bench/RESULTS.md "sparse n-gram tables")
    "dpcnn": ModelSpec("classic", "DPCNNHead", {}),
    "transformer": ModelSpec("classic", "TransformerHead", {"positions": True}),
    "rnn": ModelSpec("classic", "RNNHead", {"cell": "rnn", "bidirectional": False, "layers": 1}),
    "lstm": ModelSpec("classic", "RNNHead", {"cell": "lstm", "bidirectional": False, "layers": 1}),
    # linear baselines: TF-IDF of word (en) / character (zh) 1-2-grams, fitted by scikit-learn
    "tfidf_svm": ModelSpec("linear", "LinearHead", {"loss": "squared_hinge"}),  # LinearSVC
    "tfidf_lr": ModelSpec(
        "linear", "LinearHead", {"loss": "log", "c_grid": (3.0, 10.0, 30.0, 100.0, 300.0)}
    ),  # one-vs-rest LR
    # BERT family, scheme subword (architectures of Bert-Chinese-Text-Classification-Pytorch)
    "bert": ModelSpec("bert", "PoolHead", {"pooling": "cls"}),
    "bert_cnn": ModelSpec("bert", "CNNHead", {"dropout": 0.1}),
    "bert_rnn": ModelSpec("bert", "RNNHead", {"hidden": 256, "layers": 2, "dropout": 0.1}),
    "bert_lstm": ModelSpec("bert", "RNNHead", {"hidden": 256, "layers": 1, "bidirectional": False, "dropout": 0.1}),
    "bert_fnn": ModelSpec("bert", "PoolHead", {"pooling": "mean", "hidden": (256,)}),
    "bert_rcnn": ModelSpec("bert", "RNNHead", {"readout": "max", "hidden": 256, "layers": 1, "dropout": 0.1}),
    "bert_dpcnn": ModelSpec("bert", "DPCNNHead", {"dropout": 0.1}),
}

FAMILIES: tuple[str, ...] = tuple(FAMILY_TABLE)
SCHEME_OF_FAMILY: dict[str, str] = {f: t.scheme for f, t in FAMILY_TABLE.items()}
SCHEMES: tuple[str, ...] = tuple(sorted(set(SCHEME_OF_FAMILY.values())))  # ("subword", "vocab")
MEMBERS: dict[str, tuple[str, ...]] = {f: tuple(m for m, s in MODELS.items() if s.family == f) for f in FAMILIES}
FAMILY: dict[str, str] = {m: s.family for m, s in MODELS.items()}  # model → family
SCHEME_OF_MODEL: dict[str, str] = {m: SCHEME_OF_FAMILY[f] for m, f in FAMILY.items()}  # model → scheme
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
    return ", ".join(sorted(MODELS))


def spec(model: str) -> ModelSpec:
    """The table's entry of `model`; an unknown model is an error listing the known ones."""
    if model not in MODELS:
        raise TextbenchError(f"unknown model '{model}': known models are {known_models()}")
    return MODELS[model]


def family_of(model: str) -> str:
    """`classic`, `linear` or `bert`; an unknown model is an error listing the known ones."""
    return spec(model).family


def members(family: str) -> list[str]:
    """The registered models of `family`, in table order."""
    return list(MEMBERS[family])


def describe_families() -> str:
    """`classic (scheme vocab: textcnn, ...), linear (...), bert (...)` for error messages."""
    return ", ".join(f"{f} (scheme {SCHEME_OF_FAMILY[f]}: {', '.join(ms)})" for f, ms in MEMBERS.items())
