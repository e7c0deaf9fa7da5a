"""Params are checked when they load, by every command: every model's effective arch (models.<name>.arch
over families.<family>.arch over the registry's) is validated without importing torch, and the
message names the params file given (-p)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import base_params
from pipeline import archs
from pipeline.families import MODELS
from test_artifacts import run_cli

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_torch_free_schema_is_the_classes_signatures(model):
    """pipeline/archs.py reads the embedder's and head's keywords from their sources by `ast`: the same
    keys, in the same order, with the same annotations and defaults as the classes' own signatures."""
    from pipeline.models.registry import _kwargs, entry

    e = entry(model)
    real = {k: (p.annotation, p.default) for k, p in {**_kwargs(e.embedder), **_kwargs(e.head)}.items()}
    assert list(archs.arch_fields(model).items()) == list(real.items())


BAD = [
    ({"models": {"textcnn": {"arch": {"kernel_sizes": []}}}}, "models.textcnn.arch.kernel_sizes: "),
    ({"models": {"textcnn": {"arch": {"dropout": 1.0}}}}, "models.textcnn.arch.dropout: "),
    ({"models": {"textrnn": {"arch": {"layers": 0}}}}, "models.textrnn.arch.layers: "),
    ({"models": {"bert_cnn": {"arch": {"layer_lr_decay": 0}}}}, "models.bert_cnn.arch.layer_lr_decay: "),
    ({"models": {"tfidf_lr": {"arch": {"c_grid": []}}}}, "models.tfidf_lr.arch.c_grid: "),
    ({"models": {"fasttext": {"arch": {"kernel_size": 3}}}}, "models.fasttext.arch.kernel_size: unknown key"),
    ({"families": {"classic": {"arch": {"embed_dim": 0}}}}, "families.classic.arch.embed_dim: "),
    ({"families": {"bert": {"arch": {"num_filters": 8}}}}, "families.bert.arch.num_filters: unknown key"),
]


@pytest.mark.parametrize("command", [["download", "-d", "toy"], ["params", "-m", "textcnn"], ["prepare", "-d", "toy"]])
@pytest.mark.parametrize(("extra", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_a_bad_arch_stops_every_command_naming_the_params_file(project, capsys, monkeypatch, command, extra, message):
    params = base_params() | extra
    params["datasets"]["toy"] = {"kind": "local", "path": "toy.csv"}
    (project / "toy.csv").write_text("text,label\n" + "".join(f"doc {i},{'ab'[i % 2]}\n" for i in range(60)))
    (project / "other.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    code, err = run_cli([*command, "-p", "other.yaml"], capsys, monkeypatch)
    assert code == 2 and err.startswith(f"error: other.yaml: {message}") and err.count("\n") == 1, err
    assert not (project / "data").exists()


def test_loading_params_with_archs_does_not_import_torch(tmp_path):
    params = base_params() | {
        "models": {"textcnn": {"arch": {"kernel_sizes": [2, 3]}}, "bert_cnn": {"arch": {"dropout": 0.2}}},
        "families": {"linear": {"arch": {"ngram_max": 1}}},
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    code = (
        f"import sys; from pipeline.config import load_config; load_config({str(tmp_path / 'p.yaml')!r}); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
