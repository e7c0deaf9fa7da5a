"""params.yaml → Config: the shipped file validates, and bad keys are named in the error."""

import pytest
import yaml

from pipeline.config import config_from_dict, load_config
from pipeline.errors import TextbenchError
from conftest import REPO


def raw():
    return yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def test_shipped_params_validate():
    cfg = load_config(REPO / "params.yaml")
    assert set(cfg.benchmark.datasets) <= set(cfg.datasets)


def test_unknown_key_is_named():
    bad = raw()
    bad["datasets"]["reuters"]["splt"] = "random"
    with pytest.raises(TextbenchError, match=r"datasets\.reuters\.splt: unknown key"):
        config_from_dict(bad)


def test_ratios_must_sum_to_one():
    bad = raw()
    bad["datasets"]["thucnews"]["ratios"] = [0.8, 0.1, 0.2]
    with pytest.raises(TextbenchError, match=r"datasets\.thucnews\.ratios: .*sum to 1"):
        config_from_dict(bad)


def test_unknown_benchmark_dataset_is_named():
    bad = raw()
    bad["benchmark"]["datasets"] = ["reuters", "imdb"]
    with pytest.raises(TextbenchError, match="imdb"):
        config_from_dict(bad)


def test_model_train_override_is_validated():
    cfg = config_from_dict({**raw(), "models": {"textcnn": {"train": {"lr": -1}}}})
    with pytest.raises(TextbenchError, match=r"models\.textcnn\.train\.lr"):
        cfg.train_for("textcnn")


def test_missing_params_file(tmp_path):
    with pytest.raises(TextbenchError, match="not found"):
        load_config(tmp_path / "nope.yaml")
