"""Profiles: `textbench profile paper|default` round trip, and every profile's full plan builds."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pipeline import profiles
from pipeline.cli import app
from pipeline.config import Config
from pipeline.errors import TextbenchError

REPO = Path(__file__).resolve().parents[1]
HUB_VOCAB = {"bert-base-uncased": 30522, "bert-base-chinese": 21128}


@pytest.fixture
def proj(project: Path) -> Path:
    """The shipped params.yaml and profiles: these tests are about the product's own files."""
    shutil.copy(REPO / "params.yaml", project / "params.yaml")
    shutil.copytree(REPO / "profiles", project / "profiles", ignore=shutil.ignore_patterns("default.yaml"))
    return project


@functools.cache
def encoder_config(ref: str) -> dict:
    """The encoder's HF config without weights: local/packaged or cached config, else a BertConfig of its shape."""
    from transformers import AutoConfig, BertConfig

    from pipeline.pretrained import resolve_encoder

    try:
        return AutoConfig.from_pretrained(resolve_encoder(ref)).to_dict()
    except OSError:  # a hub name that is not cached here: build the published shape offline
        return BertConfig(vocab_size=HUB_VOCAB[ref]).to_dict()


def build_plan(cfg: Config) -> int:
    """Build every dataset × model of the benchmark on the meta device (shapes only, no memory)."""
    from pipeline.models.registry import BuildContext, build_model, entry

    built = 0
    for name in cfg.benchmark.datasets:
        ds = cfg.dataset(name)
        for model in cfg.benchmark.models:
            cfg.train_for(model)
            subword = entry(model).scheme == "subword"
            ctx = BuildContext(
                num_labels=10,
                vocab_size=5000,
                pad_id=0,
                max_len=ds.max_len,
                encoder_config=encoder_config(ds.encoder) if subword else None,
            )
            arch = cfg.arch_for(model)
            with torch.device("meta"):
                net, _ = build_model(model, ctx, arch)
            assert sum(p.numel() for p in net.parameters()) > 0
            built += 1
    return built


@pytest.mark.slow
@pytest.mark.parametrize("name", profiles.available(REPO / "params.yaml"))
def test_every_profile_builds_its_full_plan(proj: Path, name: str) -> None:
    from pipeline.models.registry import REGISTRY

    _, cfg = profiles.resolve(proj / "params.yaml", name)
    assert sorted(cfg.benchmark.models) == sorted(REGISTRY), "every registered model is benchmarked"
    assert build_plan(cfg) == len(cfg.benchmark.datasets) * len(REGISTRY)


def test_paper_round_trip(proj: Path) -> None:
    params = proj / "params.yaml"
    original = params.read_bytes()
    runner = CliRunner()
    result = runner.invoke(app, ["profile", "paper"])
    assert result.exit_code == 0, result.output
    assert profiles.current(params) == "paper"
    assert (proj / "profiles/default.yaml").read_bytes() == original  # snapshot of the hand-edited file

    from pipeline.config import load_config

    cfg = load_config(params)
    assert (
        cfg.datasets["reuters"].encoder == "bert-base-uncased"
        and cfg.datasets["thucnews"].encoder == "bert-base-chinese"
    )
    assert cfg.datasets["thucnews"].per_class == 20000 and cfg.datasets["thucnews"].filename == "THUCNews.zip"
    assert list(cfg.datasets["thucnews"].ratios) == [0.9, 0.05, 0.05]
    bert, textcnn, fasttext = cfg.train_for("bert"), cfg.train_for("textcnn"), cfg.train_for("fasttext")
    assert (bert.epochs, bert.batch_size, bert.lr) == (3, 128, 5e-5)
    assert (textcnn.epochs, textcnn.batch_size, textcnn.lr) == (20, 128, 1e-3)
    assert (fasttext.epochs, fasttext.lr) == (3, 1e-3) and cfg.arch_for("fasttext") == {"hidden": [256]}
    assert cfg.arch_for("textcnn") == {}  # the CPU-sized default arch (family and model) was replaced, not merged
    assert (cfg.train.eval_every, cfg.train.patience, cfg.train.max_train_samples, cfg.train.time_budget_s) == (
        100,
        10,
        0,
        0,
    )
    assert cfg.arch_for("bert").get("freeze_encoder", False) is False  # the paper fine-tunes the encoder

    listing = runner.invoke(app, ["profile"])
    assert "* paper" in listing.output and "  default" in listing.output
    assert runner.invoke(app, ["profile", "default"]).exit_code == 0
    assert params.read_bytes() == original  # comments and all
    assert "already" in runner.invoke(app, ["profile", "default"]).output


# The published settings the registry used to carry (issue 9): params alone must now give exactly these.
PUBLISHED = {  # (epochs, batch_size, lr, warmup_ratio)
    **dict.fromkeys(
        ["bert", "bert_cnn", "bert_rnn", "bert_lstm", "bert_fnn", "bert_rcnn", "bert_dpcnn"], (3, 128, 5e-5, 0.1)
    ),
    **dict.fromkeys(["textcnn", "dpcnn"], (20, 128, 1e-3, 0.0)),
    **dict.fromkeys(["textrnn", "textrnn_att", "textrcnn", "rnn", "lstm"], (10, 128, 1e-3, 0.0)),
    "fasttext": (3, 128, 1e-3, 0.0),
    "transformer": (20, 128, 5e-4, 0.0),
}


def test_paper_profile_gives_the_published_settings(proj: Path) -> None:
    """Per model, the paper profile's effective train settings are the published ones, and its
    architectures are the registry's (no CPU-sized family/model arch survives)."""
    from pipeline.models.registry import REGISTRY, resolve_arch

    _, cfg = profiles.resolve(proj / "params.yaml", "paper")
    assert sorted(PUBLISHED) == sorted(m for m in REGISTRY if REGISTRY[m].family != "linear")  # sklearn-fitted
    for model, expected in PUBLISHED.items():
        tc = cfg.train_for(model)
        assert (tc.epochs, tc.batch_size, tc.lr, tc.warmup_ratio) == expected, model
        assert (tc.max_train_samples, tc.max_steps) == (0, 0), model
        assert resolve_arch(model, cfg.arch_for(model)) == resolve_arch(model, {}), model
    _, ci = profiles.resolve(proj / "params.yaml", "ci")
    assert {ci.train_for(m).max_train_samples for m in REGISTRY if REGISTRY[m].family == "bert"} == {64}


def test_profile_errors(proj: Path) -> None:
    params = proj / "params.yaml"
    with pytest.raises(TextbenchError, match="unknown profile .nope.: available are default, ci, paper"):
        profiles.switch(params, "nope")
    (proj / "profiles/broken.yaml").write_text("train: {epoch: 3}\n", encoding="utf-8")
    before = params.read_bytes()
    with pytest.raises(TextbenchError, match=r"broken.yaml.*train.epoch: unknown key"):
        profiles.switch(params, "broken")
    assert params.read_bytes() == before  # nothing written on error
