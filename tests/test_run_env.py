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
from pipeline.artifacts import Environments, Outcomes, RunEnv, RunMetrics, encode_classes
from pipeline.config import ReportConfig, load_config
from pipeline.errors import TextbenchError
from pipeline.io import write_json
from pipeline.report.aggregate import ModelResult
from pipeline.report.build import build_report
from pipeline.report.outcomes import MULTI_SKIPPED, outcomes
from pipeline.train.stage import train
from test_report import LABELS, make_project
from train_fixtures import tiny_bert, write_toy_project

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


def test_a_training_records_where_it_ran_beside_its_scores(project: Path, tmp_path: Path) -> None:
    write_toy_project(project, tiny_bert(tmp_path / "bert"))
    train(load_config(project / "params.yaml"), "toy", "textcnn")
    metrics = RunMetrics.of(project / "reports" / "toy" / "textcnn")
    assert metrics is not None and metrics.env is not None
    assert (metrics.env.device, metrics.env.precision) == ("cpu", metrics.as_dict()["params"]["precision"])
    assert metrics.env == RunEnv.model_validate(device_mod.describe(torch.device("cpu"), metrics.env.precision))


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


def _set_env(root: Path, ds: str, model: str, env: dict) -> None:
    path = root / "reports" / ds / model / "metrics.json"
    write_json(path, json.loads(path.read_text()) | {"env": env})


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of generated runs: three record where they ran (two environments), one does not."""
    root = tmp_path_factory.mktemp("reported")
    make_project(root)
    _set_env(root, "reuters", "bert", _env("bf16", "Intel Xeon"))
    _set_env(root, "reuters", "textcnn", _env("fp32"))
    _set_env(root, "thucnews", "textcnn", _env("fp32"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEXTBENCH_ROOT", str(root))
        build_report(load_config(root / "params.yaml"))
    return root


def test_report_writes_where_each_run_ran_and_says_it_in_its_header(reported: Path) -> None:
    envs = Environments.read(reported / "reports/environment.json", "x")
    assert envs.of("reuters", "textcnn") == envs.of("thucnews", "textcnn") == RunEnv.model_validate(_env("fp32"))
    assert envs.of("reuters", "bert").precision == "bf16" and len(envs.environments) == 2  # distinct ones, once
    assert envs.of("thucnews", "bert") is None  # trained before textbench recorded it
    head = (reported / "reports/comparison.md").read_text().split("| Dataset |")[0]
    assert "Ran on cpu: AMD EPYC 7B13 (avx2) · fp32 · 2 threads · torch 2.3.1 · transformers 4.44.0 (runs: 2)" in head
    assert (
        "Ran on cpu: Intel Xeon (avx2) · bf16" in head
        and "no record of where they ran (trained before textbench recorded it): 1" in head
    )


def test_report_writes_every_comparable_runs_test_predictions_compactly(reported: Path) -> None:
    out = Outcomes.read(reported / "reports/outcomes.json", "x")
    assert (out.confidence, out.bootstrap, out.seed) == (0.95, 200, 42)
    for ds in LABELS:
        d = out.datasets[ds]
        assert set(d.models) == {"bert", "textcnn"} and d.labels == LABELS[ds]  # fasttext failed
        df = pd.read_parquet(reported / "reports" / ds / "bert" / "predictions.parquet").sort_values("id")
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
def test_a_broken_outcomes_file_is_one_error_naming_the_key(reported: Path, tmp_path: Path, edit, key: str) -> None:
    raw = json.loads((reported / "reports/outcomes.json").read_text())
    path = tmp_path / "outcomes.json"
    edit(raw["datasets"]["reuters"]["models"]["bert"])
    path.write_text(json.dumps(raw))
    with pytest.raises(TextbenchError, match=rf"outcomes.json: datasets.reuters: models.bert.{key}: not"):
        Outcomes.read(path, "rerun `textbench report`")


def test_class_indices_take_one_byte_each_up_to_256_classes() -> None:
    assert len(encode_classes(np.arange(240) % 90, 90)) == 320  # base64 of 240 bytes
    assert len(encode_classes(np.arange(240) % 300, 300)) == 640  # 2 bytes each above 256 classes


def test_a_multi_label_dataset_is_skipped_with_its_reason() -> None:
    preds = pd.DataFrame({"id": ["a", "b"], "y_true": [np.array([1, 0])] * 2, "y_pred": [np.array([1, 1])] * 2})
    run = ModelResult("rm", "textcnn", "ok", metrics={"label_mode": "multi", "labels": ["x", "y"]}, predictions=preds)
    out = outcomes({"rm": [run]}, ReportConfig(), 42)
    assert out.datasets == {} and out.skipped == {"rm": MULTI_SKIPPED}
