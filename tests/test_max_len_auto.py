"""max_len chosen from the data: a dataset without `max_len` gets, per scheme, the train length covering
`tokenize.max_len_auto.quantile` of its documents (multiple of 8, clamped), recorded in meta.json and
used by everything downstream (training's config.json, the predictor, the report); an explicit
`max_len` wins and leaves meta.json as it was."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import edit_params
from pipeline.artifacts import ModelConfig, TokenizedMeta
from pipeline.cli import app
from pipeline.config import MaxLenAutoConfig, load_config
from pipeline.errors import TextbenchError
from pipeline.report.context import tokenizer_lines
from pipeline.tokenize import load_encoder
from pipeline.tokenize.stage import auto_max_len

runner = CliRunner()
WORDS = {"finance": ["stocks", "bank", "market", "shares"], "sports": ["match", "team", "goal", "player"]}
FILLER = ["the", "and", "day", "news", "report", "city"]


def covering_length(lengths: list[int], quantile: float) -> int:
    """The smallest L with at least `quantile` of `lengths` at or below it (the definition, by sorting)."""
    return sorted(lengths)[math.ceil(quantile * len(lengths)) - 1]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("quantile, lo, hi", [(0.9, 32, 256), (0.5, 8, 1024), (1.0, 16, 64), (0.75, 40, 300)])
def test_choice_covers_the_quantile_rounded_and_clamped(seed: int, quantile: float, lo: int, hi: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = [int(x) for x in rng.lognormal(rng.uniform(2, 6), rng.uniform(0.2, 1.5), rng.integers(1, 400)) + 1]
    auto = MaxLenAutoConfig(quantile=quantile, min=lo, max=hi)
    got = auto_max_len(lengths, auto)
    cover = covering_length(lengths, quantile)
    assert got["train_length_at_quantile"] == cover
    assert got["chosen"] == min(max(math.ceil(cover / 8) * 8, lo), hi)
    assert lo <= got["chosen"] <= hi and (got["chosen"] % 8 == 0 or got["chosen"] in (lo, hi))
    assert {k: got[k] for k in ("quantile", "min", "max")} == {"quantile": quantile, "min": lo, "max": hi}


@pytest.mark.parametrize(
    "value, key", [({"min": 300, "max": 256}, "min"), ({"quantile": 0}, "quantile"), ({"min": 4}, "min")]
)
def test_bad_settings_name_the_key(project: Path, value: dict, key: str) -> None:
    edit_params(project, lambda raw: raw.setdefault("tokenize", {}).update(max_len_auto=value))
    with pytest.raises(TextbenchError, match=rf"tokenize\.max_len_auto(\.{key})?\b.*{key}") as e:
        load_config("params.yaml")
    assert "\n" not in str(e.value)


def write_varied_corpus(root: Path, sizes: dict[str, int]) -> list[str]:
    """Prepared splits for dataset `reuters` whose documents run from 5 to 200 words (under the 256 clamp); returns train's texts."""
    rng = random.Random(3)
    out = root / "data" / "prepared" / "reuters"
    out.mkdir(parents=True, exist_ok=True)
    train_texts: list[str] = []
    for split, n in sizes.items():
        labels = [sorted(WORDS)[i % 2] for i in range(n)]
        texts = [
            " ".join(rng.choice(WORDS[y] if rng.random() < 0.5 else FILLER) for _ in range(rng.randint(5, 200)))
            for y in labels
        ]
        pq.write_table(pa.table({"id": [f"{split}{i}" for i in range(n)], "text": texts, "label": labels}),
                       out / f"{split}.parquet")  # fmt: skip
        train_texts = train_texts or texts
    (out / "card.json").write_text(json.dumps({"labels": sorted(WORDS)}), encoding="utf-8")
    return train_texts


def set_dataset(root: Path, **keys: object) -> None:
    dataset = {"kind": "local", "path": "unused.csv", **keys}
    edit_params(root, lambda raw: raw.update(datasets={**raw["datasets"], "reuters": dataset}, train={"threads": 1}))


@pytest.mark.parametrize("scheme", ["vocab", "subword"])
def test_no_max_len_chooses_per_scheme_from_train(project: Path, scheme: str) -> None:
    texts = write_varied_corpus(project, {"train": 60, "dev": 12, "test": 12})
    set_dataset(project)
    assert runner.invoke(app, ["tokenize", "-d", "reuters", "-s", scheme]).exit_code == 0
    directory = project / "data" / "tokenized" / "reuters" / scheme
    meta = TokenizedMeta.of(directory)
    # the lengths the scheme's own encoder gives (specials included), not word counts
    lengths = load_encoder(directory).encode_batch(texts).full_lengths
    cover = covering_length(lengths, 0.9)
    assert meta.max_len == meta.max_len_auto.chosen == min(max(math.ceil(cover / 8) * 8, 32), 256)
    assert meta.max_len_auto.train_length_at_quantile == cover
    ids = pq.read_table(directory / "train.parquet").column("input_ids").to_pylist()
    assert max(map(len, ids)) == meta.max_len
    truncated = sum(n > meta.max_len for n in lengths) / len(lengths)
    assert meta.splits["train"].truncated_share == pytest.approx(truncated, abs=1e-6) and truncated <= 0.1
    (line,) = [t for t, _ in tokenizer_lines("reuters") if "documents truncated" in t]
    assert f"max_len {meta.max_len} (chosen from the data: 90% of train documents have at most {cover} " in line


@pytest.mark.parametrize("scheme", ["vocab", "subword"])
def test_explicit_max_len_wins_and_adds_nothing(project: Path, scheme: str) -> None:
    write_varied_corpus(project, {"train": 30, "dev": 6, "test": 6})
    set_dataset(project, max_len=24)
    assert runner.invoke(app, ["tokenize", "-d", "reuters", "-s", scheme]).exit_code == 0
    raw = json.loads((project / "data" / "tokenized" / "reuters" / scheme / "meta.json").read_text())
    assert raw["max_len"] == 24 and "max_len_auto" not in raw
    (line,) = [t for t, _ in tokenizer_lines("reuters") if "documents truncated" in t]
    assert "max_len 24 (set in params.yaml)" in line


def test_meta_whose_choice_disagrees_with_max_len_is_refused(project: Path) -> None:
    write_varied_corpus(project, {"train": 30, "dev": 6, "test": 6})
    set_dataset(project)
    assert runner.invoke(app, ["tokenize", "-d", "reuters", "-s", "vocab"]).exit_code == 0
    path = project / "data" / "tokenized" / "reuters" / "vocab" / "meta.json"
    raw = json.loads(path.read_text())
    path.write_text(json.dumps(raw | {"max_len": raw["max_len"] + 8}))
    with pytest.raises(TextbenchError, match="meta.json.*max_len_auto"):
        TokenizedMeta.of(path.parent)


@pytest.mark.parametrize("model", ["tfidf_svm", "textcnn"])
def test_trained_model_and_predictor_use_the_chosen_value(project: Path, model: str) -> None:
    from pipeline.serve.predictor import Predictor

    write_varied_corpus(project, {"train": 40, "dev": 10, "test": 10})
    set_dataset(project, bag_max_len=0)  # tfidf_svm, too, reads max_len
    edit_params(project, lambda raw: raw.update(models={"textcnn": {"train": {"epochs": 1, "batch_size": 16}}}))
    assert runner.invoke(app, ["tokenize", "-d", "reuters", "-s", "vocab"]).exit_code == 0
    chosen = TokenizedMeta.of(project / "data" / "tokenized" / "reuters" / "vocab").max_len
    assert chosen != 256  # the old class default: the test tells the two apart
    result = runner.invoke(app, ["train", "-d", "reuters", "-m", model])
    assert result.exit_code == 0, result.output
    model_dir = project / "models" / "reuters" / model
    assert ModelConfig.of(model_dir).max_len == chosen
    predictor = Predictor.load(model_dir)
    assert predictor.meta.max_len == chosen
    assert len(predictor.encoder.encode(["bank " * 1000])[0]) == chosen


def test_params_says_max_len_is_chosen(project: Path) -> None:
    set_dataset(project)
    result = runner.invoke(app, ["params", "-m", "textcnn", "-d", "reuters"])
    assert (
        result.exit_code == 0 and "max_len: auto, chosen per scheme from the train lengths (tokenize" in result.output
    )
