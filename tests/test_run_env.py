"""Where a run ran: every training records its hardware and numerics (pipeline/device.py `describe`,
typed as RunEnv), and the report gathers them into reports/environment.json, its header, and the
compact reports/outcomes.json of every run's test predictions that `textbench diff` tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline import device as device_mod
from pipeline.artifacts import Environments, Outcomes, RunEnv, encode_classes
from pipeline.config import load_config
from pipeline.errors import TextbenchError
from pipeline.io import write_json
from pipeline.report.build import build_report
from test_report import LABELS, make_project

CPUINFO = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx avx2 fma avx512f amx_tile amx_bf16\n"


def test_describe_records_the_device_precision_threads_and_versions() -> None:
    env = RunEnv.model_validate(device_mod.describe(torch.device("cpu"), "bf16"))
    assert (env.device, env.precision, env.threads, env.torch) == (
        "cpu",
        "bf16",
        torch.get_num_threads(),
        torch.__version__,
    )
    assert env.cpu and env.device_name == "" and set(env.isa) <= set(device_mod.ISA)
    assert env.transformers  # a version, or "not installed"


def test_the_kernel_choosing_instruction_sets_come_from_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_mod, "_cpuinfo", lambda: CPUINFO)
    assert device_mod.cpu_model() == "AMD EPYC 7B13"
    assert device_mod.cpu_isa() == ["avx2", "avx512f", "amx_tile", "amx_bf16"]  # in ISA order, sse/fma left out
    monkeypatch.setattr(device_mod, "_cpuinfo", lambda: "")
    assert device_mod.cpu_isa() == [] and device_mod.cpu_model()


def _env(precision: str, cpu: str = "AMD EPYC 7B13") -> dict:
    return {
        "device": "cpu",
        "cpu": cpu,
        "isa": ["avx2"],
        "precision": precision,
        "threads": 2,
        "torch": "2.3.1",
        "transformers": "4.44.0",
    }


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_project(tmp_path)
    monkeypatch.setenv("TEXTBENCH_ROOT", str(tmp_path))
    return tmp_path


def _set_env(root: Path, ds: str, model: str, env: dict) -> None:
    path = root / "reports" / ds / model / "metrics.json"
    write_json(path, json.loads(path.read_text()) | {"env": env})


def test_report_writes_where_each_run_ran_and_says_it_in_its_header(project: Path) -> None:
    _set_env(project, "reuters", "bert", _env("bf16", "Intel Xeon"))
    _set_env(project, "reuters", "textcnn", _env("fp32"))
    _set_env(project, "thucnews", "textcnn", _env("fp32"))
    build_report(load_config(project / "params.yaml"))
    envs = Environments.read(project / "reports/environment.json", "x")
    assert envs.of("reuters", "textcnn") == envs.of("thucnews", "textcnn") == RunEnv.model_validate(_env("fp32"))
    assert envs.of("reuters", "bert").precision == "bf16" and len(envs.environments) == 2  # distinct ones, once
    assert envs.of("thucnews", "bert") is None  # trained before textbench recorded it
    head = (project / "reports/comparison.md").read_text().split("| Dataset |")[0]
    assert "Ran on cpu: AMD EPYC 7B13 (avx2) · fp32 · 2 threads · torch 2.3.1 · transformers 4.44.0 (runs: 2)" in head
    assert (
        "Ran on cpu: Intel Xeon (avx2) · bf16" in head
        and "no record of where they ran (trained before textbench recorded it): 1" in head
    )


def test_report_writes_every_comparable_runs_test_predictions_compactly(project: Path) -> None:
    build_report(load_config(project / "params.yaml"))
    out = Outcomes.read(project / "reports/outcomes.json", "x")
    assert (out.confidence, out.bootstrap, out.seed) == (0.95, 200, 42)
    for ds in LABELS:
        d = out.datasets[ds]
        assert set(d.models) == {"bert", "textcnn"} and d.labels == LABELS[ds]  # fasttext failed
        df = pd.read_parquet(project / "reports" / ds / "bert" / "predictions.parquet").sort_values("id")
        index = {name: i for i, name in enumerate(d.labels)}
        assert d.classes(d.models["bert"].pred).tolist() == [index[x] for x in df["pred"]]
        assert d.classes(d.gold).tolist() == [index[x] for x in df["label"]]
        assert d.models["bert"].fingerprint == "fp-bert"


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda d: d.update(pred=d["pred"][:-4]), "pred"),  # truncated: fewer documents than n
        (lambda d: d.update(pred=encode_classes(np.full(240, 9), 10)), "pred"),  # a class past the labels
        (lambda d: d.update(pred="not base64!"), "pred"),
    ],
)
def test_a_broken_outcomes_file_is_one_error_naming_the_key(project: Path, edit, key: str) -> None:
    build_report(load_config(project / "params.yaml"))
    path = project / "reports/outcomes.json"
    raw = json.loads(path.read_text())
    edit(raw["datasets"]["reuters"]["models"]["bert"])
    path.write_text(json.dumps(raw))
    with pytest.raises(TextbenchError, match=rf"outcomes.json: datasets.reuters: models.bert.{key}: not"):
        Outcomes.read(path, "rerun `textbench report`")


def test_class_indices_take_one_byte_each_up_to_256_classes() -> None:
    assert len(encode_classes(np.arange(240) % 90, 90)) == 320  # base64 of 240 bytes
    assert len(encode_classes(np.arange(240) % 300, 300)) == 640  # 2 bytes each above 256 classes
