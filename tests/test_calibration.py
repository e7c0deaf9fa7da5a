"""Calibration: ECE / Brier / NLL as documented in pipeline/evaluate.py, temperature scaling fitted on
dev (one function for every model), and the temperature in config.json applied by every predictor."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from scipy.special import expit, softmax

from pipeline.evaluate import ECE_BINS, calibration, fit_temperature, hits, logits_of, nll, reliability, temper
from pipeline.serve.predictor import Predictor
from serve_models import model_dir, trained_root


def test_single_label_ece_brier_nll_match_a_hand_computation() -> None:
    """Top-label ECE over 15 equal-width bins: two documents share bin 13 (one right, one wrong), so the
    bin's |accuracy − confidence| is taken after averaging (0.41), not per document (0.5)."""
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.92, 0.04, 0.04], [0.45, 0.3, 0.25]], dtype=np.float32)
    y = np.array([0, 0, 1, 1])
    got = calibration(y, probs)
    assert got["ece"] == pytest.approx(2 / 4 * abs(0.5 - 0.91) + 1 / 4 * 0.7 + 1 / 4 * 0.45, abs=1e-6)
    brier = [0.01 + 0.0025 + 0.0025, 0.64 + 0.49 + 0.01, 0.8464 + 0.9216 + 0.0016, 0.2025 + 0.49 + 0.0625]
    assert got["brier"] == pytest.approx(np.mean(brier), abs=1e-6)
    assert got["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.2, 0.04, 0.3])), abs=1e-6)
    conf, acc, count = reliability(*hits(y, probs))
    assert count.tolist() == [0] * 6 + [1] + [0] * 3 + [1, 0, 0, 2, 0]
    assert conf[13] == pytest.approx(0.91) and acc[13] == 0.5 and np.isnan(acc[0])


def test_multi_label_ece_bins_every_document_label_probability() -> None:
    probs = np.array([[0.9, 0.1], [0.62, 0.55]], dtype=np.float32)
    y = np.array([[1, 0], [0, 1]], dtype=np.int8)
    got = calibration(y, probs)
    assert got["ece"] == pytest.approx((0.1 + 0.1 + 0.62 + 0.45) / 4, abs=1e-6)
    assert got["brier"] == pytest.approx((0.01 + 0.01 + 0.3844 + 0.2025) / 4, abs=1e-6)
    assert got["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.9, 0.38, 0.55])), abs=1e-6)


@pytest.mark.parametrize("multi", [False, True])
def test_calibrated_probabilities_have_near_zero_ece(multi: bool) -> None:
    """Labels drawn from the probabilities themselves: ECE is only sampling noise, whatever the bins."""
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, (20000, 4))
    probs = expit(z) if multi else softmax(z, axis=1)
    y = (rng.random(z.shape) < probs).astype(np.int8) if multi else _draw(rng, probs)
    assert calibration(y, probs.astype(np.float32))["ece"] < 0.015


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("scale", [4.0, 0.3])
def test_temperature_fitted_on_dev_recovers_the_miscalibration(multi: bool, scale: float) -> None:
    """Over- (×4) and under-confident (×0.3) logits of a calibrated model: the fitted T undoes the scale
    from the probabilities alone (as the trainer fits it), NLL and ECE drop on a fresh split, and no
    decision changes (argmax; multi-label, the 0.5 threshold)."""
    rng = np.random.default_rng(1)
    split = {}
    for name in ("dev", "test"):
        z = rng.normal(0, 1.5, (5000, 5))
        truth = expit(z) if multi else softmax(z, axis=1)
        y = (rng.random(z.shape) < truth).astype(np.int8) if multi else _draw(rng, truth)
        split[name] = ((expit if multi else lambda a: softmax(a, axis=1))(scale * z).astype(np.float32), y)
    dev_probs, dev_y = split["dev"]
    t = fit_temperature(logits_of(dev_probs, multi), dev_y)
    assert t == pytest.approx(scale, rel=0.1)
    probs, y = split["test"]
    after = temper(probs, t, multi)
    assert nll(logits_of(after, multi), y) < nll(logits_of(probs, multi), y)
    assert calibration(y, after)["ece"] < min(0.03, calibration(y, probs)["ece"] / 2)
    if multi:
        assert ((after >= 0.5) == (probs >= 0.5)).all()
    else:
        assert (after.argmax(1) == probs.argmax(1)).all()


@pytest.mark.parametrize("multi", [False, True])
def test_no_dev_error_keeps_temperature_one(multi: bool) -> None:
    """Every dev decision right: NLL falls for ever as T → 0, so no fit (else every confidence becomes 1)."""
    z = np.random.default_rng(3).normal(0, 1, (200, 3))
    y = (z >= 0).astype(np.int8) if multi else z.argmax(1)
    assert fit_temperature(z, y) == 1.0
    y[0] = 1 - y[0] if multi else (y[0] + 1) % 3  # one error: a finite optimum
    assert fit_temperature(z, y) != 1.0


def test_temper_equals_dividing_the_logits() -> None:
    z = np.random.default_rng(2).normal(0, 3, (50, 6))
    for multi, f in ((False, lambda a: softmax(a, axis=1)), (True, expit)):
        np.testing.assert_allclose(temper(f(z).astype(np.float32), 2.5, multi), f(z / 2.5), atol=1e-6)
    assert ECE_BINS == 15


def test_trainer_writes_its_dev_temperature_and_test_calibration() -> None:
    """config.json `temperature` is the one metrics.json reports; the test probabilities are scaled by it."""
    root = trained_root()
    config = json.loads((model_dir("textcnn") / "config.json").read_text())
    metrics = json.loads((root / "reports" / "reuters" / "textcnn" / "metrics.json").read_text())
    cal = metrics["calibration"]
    assert config["temperature"] == cal["temperature"] > 0
    assert set(cal["before"]) == set(cal["after"]) == {"ece", "brier", "nll"}
    table = pq.read_table(root / "reports" / "reuters" / "textcnn" / "predictions.parquet")
    gold = np.array([config["labels"].index(x) for x in table["label"].to_pylist()])
    probs = np.stack(table["probs"].to_pylist()).astype(np.float32)
    assert calibration(gold, probs) == pytest.approx(cal["after"], abs=1e-6)


def test_config_temperature_is_applied_by_every_prediction(tmp_path: Path) -> None:
    """The same weights with config.json temperature T: probabilities softmax(logits / T), not softmax(logits)."""
    texts = ["the goal was great", "stock market news", "people said the week", "goal and stock"]
    base = Predictor.load(model_dir("textcnn"))
    copy = tmp_path / "textcnn"
    shutil.copytree(model_dir("textcnn"), copy)
    config = json.loads((copy / "config.json").read_text())
    config["temperature"] = config["temperature"] * 3.0
    (copy / "config.json").write_text(json.dumps(config))
    scaled = Predictor.load(copy)
    logits = base.logits_from_ids(base.encode(texts)).astype(np.float64)
    np.testing.assert_allclose(base.predict_proba(texts), softmax(logits / (config["temperature"] / 3), 1), atol=1e-6)
    np.testing.assert_allclose(scaled.predict_proba(texts), softmax(logits / config["temperature"], 1), atol=1e-6)
    assert math.isclose(scaled.predict(texts)[0]["confidence"], float(scaled.predict_proba(texts)[0].max()))


def _draw(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One class per row drawn from its probabilities."""
    return (rng.random((len(probs), 1)) > probs.cumsum(1)).sum(1).clip(0, probs.shape[1] - 1)


def test_integrated_gradients_explain_the_calibrated_probability(tmp_path: Path) -> None:
    """IG completeness holds for the probability `explain` reports: softmax(logits / T), not softmax(logits)."""
    from pipeline.serve.explain import explain

    copy = tmp_path / "textcnn"
    shutil.copytree(model_dir("textcnn"), copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(config | {"temperature": 4.0}))
    p = Predictor.load(copy)
    e = explain(p, "the goal was great", method="ig", steps=64)
    ids_t, mask = (torch.from_numpy(a) for a in p.pad(p.encode(["the goal was great"])))
    with torch.no_grad():
        base = torch.softmax(p.model(torch.full_like(ids_t, p.pad_id), mask) / 4.0, -1)[0, p.labels.index(e.label)]
    assert e.confidence == pytest.approx(float(p.predict_proba(["the goal was great"])[0].max()))
    assert sum(e.scores) == pytest.approx(e.confidence - float(base), abs=0.02)


def test_report_shows_ece_before_and_after_and_the_reliability_diagram(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run trained before calibration existed is named, not shown as calibrated."""
    from pipeline.config import load_config
    from pipeline.report.build import build_report

    root = tmp_path / "root"
    shutil.copytree(trained_root(), root, ignore=shutil.ignore_patterns("*.safetensors"))
    monkeypatch.setenv("TEXTBENCH_ROOT", str(root))
    monkeypatch.chdir(root)
    old = root / "reports" / "reuters" / "bert" / "metrics.json"
    metrics = json.loads(old.read_text())
    del metrics["calibration"]
    old.write_text(json.dumps(metrics))
    build_report(load_config(root / "params.yaml"))
    md = (root / "reports" / "comparison.md").read_text()
    section = md.split("### Calibration")[1].split("\n### ")[0]
    cal = json.loads((root / "reports" / "reuters" / "textcnn" / "metrics.json").read_text())["calibration"]
    assert (
        f"| textcnn | {cal['temperature']:.3g} | {cal['before']['ece']:.4f} | **{cal['after']['ece']:.4f}** |"
        in section
    )
    assert "| bert |" not in section and "trained before it existed; retrain): bert." in section
    assert "15 equal-width confidence bins" in section
    assert (root / "reports" / "figures" / "reuters" / "reliability.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "key, value",
    [("temperature", 0.0), ("temperature", "2"), ("after.ece", 1.5), ("before.nll", -1.0), ("before", None)],
)
def test_a_malformed_calibration_record_is_one_error_naming_the_key(tmp_path: Path, key: str, value: object) -> None:
    """The report reads metrics.json `calibration` through RunMetrics: a bad value is one TextbenchError."""
    from pipeline.artifacts import RunMetrics
    from pipeline.errors import TextbenchError

    run = tmp_path / "textcnn"
    shutil.copytree(trained_root() / "reports" / "reuters" / "textcnn", run)
    metrics = json.loads((run / "metrics.json").read_text())
    *parents, last = key.split(".")
    node = metrics["calibration"]
    for part in parents:
        node = node[part]
    node[last] = value
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(TextbenchError, match=rf"metrics.json: calibration\.{key}"):
        RunMetrics.of(run)
