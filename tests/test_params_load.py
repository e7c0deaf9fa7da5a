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
from pipeline.errors import TextbenchError
from pipeline.families import SCHEMES
from test_artifacts import run_cli

REPO = Path(__file__).resolve().parents[1]

# Values of every kind an arch key might wrongly get: out of bounds, wrong type, empty, nested bad.
PROBES = [None, True, "x", -1, 0, 1, 3, 0.0, 0.5, 1.0, 1.5, [], [0], [3, 0], [2, 3], [256, -1], "mean", "lstm"]


def outcome(resolve, model: str, arch: dict) -> tuple[str, object]:
    try:
        return "ok", resolve(model, arch)
    except TextbenchError as e:
        return "error", str(e)


@pytest.mark.parametrize("model", sorted(SCHEMES))
def test_torch_free_schema_agrees_with_the_registry(model):
    """pipeline/archs.py reads the registry and the classes' signatures: same values, same errors, for
    every key of every model and every probe value (and an unknown key)."""
    from pipeline.models.registry import resolve_arch

    keys = list(archs.resolve_arch(model, {}))
    assert outcome(archs.resolve_arch, model, {}) == outcome(resolve_arch, model, {})
    for arch in [{"no_such_key": 1}, *({k: v} for k in keys for v in PROBES)]:
        assert outcome(archs.resolve_arch, model, arch) == outcome(resolve_arch, model, arch), arch


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
