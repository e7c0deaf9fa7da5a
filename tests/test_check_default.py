"""bench/check_default.py: a row fails its accuracy floor only when it is significantly below it
(one-sided exact binomial test on its test documents), not when test noise put it just under."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, base_params, write_params
from pipeline.evaluate import classification_metrics
from pipeline.io import write_json

LABELS = ["体育", "科技", "财经"]


def check_default():
    spec = importlib.util.spec_from_file_location("check_default", REPO / "bench" / "check_default.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_row(root: Path, model: str, right: int, n: int) -> None:
    """reports/thucnews/<model>/metrics.json with exactly `right` of `n` test documents right, and its status."""
    y_true = np.arange(n) % len(LABELS)
    y_pred = np.where(np.arange(n) < right, y_true, (y_true + 1) % len(LABELS))
    rdir = root / "reports" / "thucnews" / model
    write_json(rdir / "metrics.json", classification_metrics(y_true, y_pred, LABELS) | {"stop_reason": "plateau"})
    write_json(root / "reports" / "thucnews" / ".status" / model / "42.json", {"status": "ok", "wall_time_s": 9.0})


# THUCNews floors: dpcnn 0.76, textcnn and fasttext 0.78
ROWS = {
    "dpcnn": (714, 940),  # 0.7596: the 0.76 floor missed by 0.04 point on this box's run
    "fasttext": (735, 940),  # 0.7819: above
    "textcnn": (658, 940),  # 0.70: 8 points below on 940 documents, far outside the noise
    "lstm": (69_500, 100_000),  # 0.695 < 0.70 (the classic family's floor): half a point, but on 100k documents
}


def test_a_floor_is_failed_only_significantly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    params = base_params()
    params["benchmark"] = {"datasets": ["thucnews"], "models": list(ROWS), "seeds": [42]}
    write_params(tmp_path, params)
    for model, (right, n) in ROWS.items():
        write_row(tmp_path, model, right, n)
    monkeypatch.setenv("TEXTBENCH_ROOT", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["check_default.py", "--params", str(tmp_path / "params.yaml")])
    assert check_default().main() == 1
    out = capsys.readouterr().out
    rows = {line.split(" | ")[1]: line for line in out.splitlines() if line.startswith("| thucnews |")}
    assert rows["dpcnn"].endswith("| 0.76 | 0.5004 | 0.7824 | yes (below floor within noise) |")
    assert rows["fasttext"].endswith("| yes |")
    assert re.search(r"\| 0\.78 \| \d\.\de-\d+ ✱ \| 0\.7\d{3} \| \*\*NO\*\* \|$", rows["textcnn"])
    assert rows["lstm"].endswith("| **NO** |")  # the noise shrinks with the test set: 0.5 point is real here
    assert out.rstrip().endswith("below floor: thucnews/textcnn, thucnews/lstm")


@pytest.mark.parametrize("n", [200, 940, 5000, 100_000])
def test_the_rule_is_the_exact_binomial_test_and_its_bound(n: int) -> None:
    from scipy.stats import binomtest

    below_floor = check_default().below_floor
    for accuracy in np.linspace(0.70, 0.80, 21):
        accuracy = round(accuracy * n) / n
        failed, p, upper = below_floor(accuracy, n, 0.76, 0.95)
        assert p == pytest.approx(binomtest(round(accuracy * n), n, 0.76, alternative="less").pvalue)
        assert failed == (p < 0.05) == (upper < 0.76)  # the test and the interval say the same
        if accuracy >= 0.76:
            assert not failed
