"""params.yaml → Config: the shipped file validates, bad keys are named in the error, and the
effective settings of a model follow the documented precedence (train: < families < models)."""

import re
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from conftest import REPO
from pipeline.config import TrainConfig, config_from_dict, load_config
from pipeline.errors import TextbenchError
from pipeline.families import MODELS, SCHEME_OF_MODEL, family_of


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


def test_ratios_must_give_every_split_documents():
    """Before: [1, 0, 0] was accepted and failed later, with empty dev and test splits."""
    bad = raw()
    bad["datasets"]["thucnews"]["ratios"] = [1, 0, 0]
    with pytest.raises(TextbenchError, match=r"params\.yaml: datasets\.thucnews\.ratios: .*must each be above 0"):
        config_from_dict(bad)


def test_local_dataset_needs_a_source_at_load():
    bad = raw()
    bad["datasets"]["mine"] = {"kind": "local"}
    with pytest.raises(
        TextbenchError, match=r"datasets\.mine: a local corpus needs exactly one of path, files, class_files"
    ):
        config_from_dict(bad)


def test_errors_name_the_params_file_actually_given(tmp_path, monkeypatch):
    """Before: messages said params.yaml even with `-p other.yaml`."""
    from pipeline.data.download import download

    other = tmp_path / "other.yaml"
    bad = raw()
    bad["benchmark"]["models"] = ["textcnn", "nope"]
    other.write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    with pytest.raises(
        TextbenchError, match=rf"^{re.escape(str(other))}: benchmark\.models names 'nope', not a registered"
    ):
        load_config(other)
    good = raw()
    good["datasets"]["reuters"]["filename"] = ""
    other.write_text(yaml.safe_dump(good, allow_unicode=True), encoding="utf-8")
    cfg = load_config(other)
    assert cfg.source == str(other) and config_from_dict(raw()).source == "params.yaml"
    with pytest.raises(TextbenchError, match=rf"unknown dataset 'nope': {re.escape(str(other))} datasets has"):
        cfg.dataset("nope")
    monkeypatch.setenv("TEXTBENCH_ROOT", str(tmp_path))
    with pytest.raises(TextbenchError, match=rf"^{re.escape(str(other))}: datasets\.reuters\.filename is empty"):
        download(cfg, "reuters")


def test_unknown_benchmark_dataset_is_named():
    bad = raw()
    bad["benchmark"]["datasets"] = ["reuters", "imdb"]
    with pytest.raises(TextbenchError, match="imdb"):
        config_from_dict(bad)


def test_model_train_override_is_validated():
    """At load time, not when the training starts."""
    with pytest.raises(TextbenchError, match=r"models\.textcnn\.train\.lr"):
        config_from_dict({**raw(), "models": {"textcnn": {"train": {"lr": -1}}}})


def test_missing_params_file(tmp_path):
    with pytest.raises(TextbenchError, match="not found"):
        load_config(tmp_path / "nope.yaml")


# --- effective settings: precedence, families, `textbench params` --------------------------------


def minimal(**sections):
    """The smallest valid params: one local dataset, two models, no train/families/models keys."""
    return {
        "datasets": {"toy": {"kind": "local", "path": "toy.csv"}},
        "benchmark": {"datasets": ["toy"], "models": ["textcnn", "bert"]},
        **sections,
    }


def test_registry_adds_no_train_settings():
    """With no train keys in params, every model trains with TrainConfig's defaults: nothing hidden wins."""
    cfg = config_from_dict(minimal())
    for model in MODELS:
        assert cfg.train_for(model) == TrainConfig(), model
        assert cfg.arch_for(model) == {}, model


def test_train_precedence_train_families_models():
    cfg = config_from_dict(
        minimal(
            train={"epochs": 7, "lr": 0.1, "weight_decay": 0.2},
            families={"bert": {"train": {"epochs": 2, "lr": 5e-5}}, "classic": {"train": {"batch_size": 32}}},
            models={"bert": {"train": {"epochs": 1}}, "fasttext": {"train": {"lr": 0.5}}},
        )
    )
    bert, bert_cnn, textcnn, fasttext = (cfg.train_for(m) for m in ("bert", "bert_cnn", "textcnn", "fasttext"))
    assert (bert.epochs, bert.lr, bert.weight_decay, bert.batch_size) == (
        1,
        5e-5,
        0.2,
        128,
    )  # models > family > train > default
    assert (bert_cnn.epochs, bert_cnn.lr) == (2, 5e-5)  # family > train
    assert (textcnn.epochs, textcnn.lr, textcnn.batch_size) == (7, 0.1, 32)  # `train:` reaches textcnn
    assert (fasttext.epochs, fasttext.lr, fasttext.batch_size) == (7, 0.5, 32)
    assert textcnn.grad_clip == TrainConfig().grad_clip  # default where nobody sets it


def test_arch_precedence_registry_families_models():
    from pipeline.models.registry import resolve_arch

    cfg = config_from_dict(
        minimal(
            families={"classic": {"arch": {"embed_dim": 64, "dropout": 0.3}}},
            models={"textrcnn": {"arch": {"dropout": 0.2}}},
        )
    )
    assert cfg.arch_for("textrcnn") == {"embed_dim": 64, "dropout": 0.2}
    textcnn, textrnn, textrcnn = (resolve_arch(m, cfg.arch_for(m)) for m in ("textcnn", "textrnn", "textrcnn"))
    assert (textcnn["embed_dim"], textcnn["dropout"], textcnn["num_filters"]) == (
        64,
        0.3,
        256,
    )  # family > class default
    assert (textrnn["hidden"], textrnn["layers"], textrnn["dropout"]) == (128, 2, 0.3)  # registry > class default
    assert (textrcnn["hidden"], textrcnn["dropout"]) == (256, 0.2)  # models > family > registry's 0.5
    assert cfg.arch_for("bert") == {} and resolve_arch("bert", {})["pooling"] == "cls"


def test_unknown_family_model_and_benchmark_names_are_errors():
    with pytest.raises(TextbenchError, match=r"families\.roberta: unknown family; known families are classic .*bert"):
        config_from_dict(minimal(families={"roberta": {}}))
    with pytest.raises(TextbenchError, match=r"models\.textcnm: unknown model; known models are .*textcnn"):
        config_from_dict(minimal(models={"textcnm": {"train": {"epochs": 1}}}))
    with pytest.raises(TextbenchError, match=r"benchmark\.models names 'bertt'.*known models: .*bert_cnn"):
        config_from_dict(minimal(benchmark={"datasets": ["toy"], "models": ["bertt"]}))
    with pytest.raises(TextbenchError, match=r"families\.bert\.train\.epoch: unknown key"):
        config_from_dict(minimal(families={"bert": {"train": {"epoch": 2}}}))
    with pytest.raises(TextbenchError, match=r"families\.classic\.train\.lr: .*greater than 0"):
        config_from_dict(minimal(families={"classic": {"train": {"lr": 0}}}))


def test_family_arch_key_must_fit_every_member():
    with pytest.raises(
        TextbenchError, match=r"families\.classic\.arch\.num_filters: unknown key for textrnn.*models\.<name>\.arch"
    ):  # textcnn takes num_filters, textrnn (same family) does not: refused when params load
        config_from_dict(minimal(families={"classic": {"arch": {"num_filters": 64}}}))
    with pytest.raises(TextbenchError, match=r"families\.bert\.arch\.dropout: .*valid number"):
        config_from_dict(minimal(families={"bert": {"arch": {"dropout": "high"}}}))
    ok = config_from_dict(minimal(families={"bert": {"arch": {"freeze_encoder": True}}}))
    assert ok.arch_for("bert_dpcnn") == {"freeze_encoder": True}


def test_families_match_the_registry():
    from pipeline.models.registry import REGISTRY

    assert {name: e.scheme for name, e in REGISTRY.items()} == SCHEME_OF_MODEL
    assert {name: e.family for name, e in REGISTRY.items()} == {m: family_of(m) for m in MODELS}
    assert {e.family for e in REGISTRY.values() if e.scheme == "subword"} == {"bert"}
    assert {e.family for e in REGISTRY.values() if e.scheme == "vocab"} == {"classic", "linear"}
    assert not any(hasattr(e, "train") for e in REGISTRY.values())  # train settings live in params only


def test_loading_params_does_not_import_torch():
    code = (
        "import sys; from pipeline.config import load_config; cfg = load_config('params.yaml'); "
        "cfg.train_for('bert'); assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_shipped_params_leave_textcnn_epochs_to_train():
    cfg = load_config(REPO / "params.yaml")
    assert "epochs" not in cfg.models.get("textcnn", {"train": {}}).train
    assert "epochs" not in cfg.families.get("classic", {"train": {}}).train
    assert cfg.train_for("textcnn").epochs == cfg.train.epochs


def test_params_command_shows_an_edit_of_train_epochs(tmp_path):
    from pipeline.cli import app

    edited = raw()
    edited["train"]["epochs"] = 11
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(edited, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(app, ["params", "--model", "textcnn", "--dataset", "reuters", "-p", str(params)])
    assert result.exit_code == 0, result.output
    out = yaml.safe_load(result.output)
    assert out["train"]["epochs"] == 11
    assert (out["family"], out["scheme"]) == ("classic", "vocab")
    assert out["dataset"] == {
        "name": "reuters",
        "max_len": edited["datasets"]["reuters"]["max_len"],
        "encoder": edited["datasets"]["reuters"]["encoder"],
    }
    assert out["arch"]["kernel_sizes"] == [2, 3, 4]  # resolved: class defaults included
    assert out["arch"]["embed_dim"] == edited["families"]["classic"]["arch"]["embed_dim"]
    bert = yaml.safe_load(CliRunner().invoke(app, ["params", "-m", "bert", "-p", str(params)]).output)
    assert bert["family"] == "bert" and "dataset" not in bert and bert["arch"]["pooling"] == "cls"
    assert bert["train"]["lr"] == edited["families"]["bert"]["train"]["lr"]  # the family wins over train:
    assert bert["train"]["epochs"] == 11  # ...and what it does not set comes from train:


@pytest.mark.slow
def test_params_command_is_listed_and_names_unknown_models(tmp_path):
    from pipeline.cli import app

    assert "params" in CliRunner().invoke(app, ["--help"]).output
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "params", "-m", "nope", "-p", str(REPO / "params.yaml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "unknown model 'nope'" in result.stderr
