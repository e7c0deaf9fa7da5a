"""pipeline/artifacts.py: one typed reader per JSON file textbench writes and reads back.

Unit checks of each reader, then a fuzz-style sweep: random bytes, truncated JSON, the wrong JSON
type, and every checked key deleted or given a value of another JSON type, written into each
artifact of a real model dir and of a report project. `textbench predict` and `textbench report`
must exit 2 with one `error:` line naming the file, never a traceback, never an output file.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline import paths
from pipeline.artifacts import (
    SCORES,
    Artifact,
    DatasetCard,
    ModelConfig,
    RunMetrics,
    RunStatus,
    TokenizedMeta,
    read_scores,
    read_vocab,
    retrain,
)
from pipeline.cli import main
from pipeline.errors import TextbenchError
from serve_models import model_dir
from test_report import make_project, status_file

META = {
    "scheme": "vocab",
    "labels": ["a", "b"],
    "language": "en",
    "max_len": 16,
    "truncation": "head",
    "vocab_size": 10,
    "pad_id": 0,
    "unk_id": 1,
    "fingerprint": "f",
    "vocab_file": "vocab.json",
    "splits": {"train": {"docs": 3, "unk_rate": 0.5, "truncated_share": 0.0}},
    "extra": {"kept": True},
}
CONFIG = {
    "model": "textcnn",
    "dataset": "d",
    "scheme": "vocab",
    "arch": {},
    "labels": ["a", "b"],
    "num_labels": 2,
    "vocab_size": 10,
    "pad_id": 0,
    "max_len": 16,
    "encoder": None,
    "encoder_config": None,
}
METRICS = {
    **dict.fromkeys(SCORES, 0.5),
    "labels": ["a", "b"],
    "confusion_matrix": [[1, 1], [1, 1]],
    "per_class": {c: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2} for c in "ab"},
}


def write(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_valid_artifacts_read_back_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTBENCH_ROOT", str(tmp_path))
    meta = TokenizedMeta.read(write(tmp_path / "meta.json", META), "fix")
    assert meta.labels == ["a", "b"] and meta.unk_rates() == {"train": 0.5} and meta.as_dict() == META
    assert ModelConfig.read(write(tmp_path / "config.json", CONFIG), "fix").as_dict() == CONFIG
    assert RunMetrics.read(write(tmp_path / "metrics.json", METRICS), "fix").macro_f1 == 0.5
    write(paths.job_status("d", "m", 1), {"status": "failed", "error": "boom"})
    assert RunStatus.of("d", "m", 1).error == "boom"
    assert RunMetrics.of(tmp_path / "nothing") is None and RunStatus.of("d", "m", 2) is None
    assert DatasetCard.read(
        write(tmp_path / "card.json", {"labels": ["x"], "counts": {"train": {"x": 2}}}), "fix"
    ).split_totals() == {"train": 2}


@pytest.mark.parametrize(
    "kind, base, change, message",
    [
        (ModelConfig, CONFIG, {"num_labels": -1}, "num_labels: Input should be greater than or equal to 2"),
        (ModelConfig, CONFIG, {"labels": ["a", "b", "c"]}, "labels: 3 classes, but num_labels is 2"),
        (ModelConfig, CONFIG, {"labels": ["a", "a"]}, "labels: class names repeat: ['a']"),
        (ModelConfig, CONFIG, {"model": "textcnn2"}, "model: unknown model 'textcnn2'"),
        (ModelConfig, CONFIG, {"scheme": "subword"}, "scheme: 'subword', but model 'textcnn' uses 'vocab'"),
        (ModelConfig, CONFIG, {"model": "bert", "scheme": "subword"}, "encoder_config: scheme subword needs"),
        (ModelConfig, CONFIG, {"pad_id": 10}, "pad_id: 10 is outside the vocabulary of 10"),
        (RunMetrics, METRICS, {"macro_f1": "0.9"}, "macro_f1: Input should be a valid number"),
        (RunMetrics, METRICS, {"accuracy": float("nan")}, "accuracy: Input should be less than or equal to 1"),
        (RunMetrics, METRICS, {"accuracy": True}, "accuracy: Input should be a valid number"),
        (RunMetrics, METRICS, {"confusion_matrix": [[1, 1]]}, "confusion_matrix: not 2 x 2"),
        (RunMetrics, METRICS, {"per_class": {}}, "per_class: classes differ from labels"),
        (TokenizedMeta, META, {"vocab_file": "../../etc/passwd"}, "vocab_file: '../../etc/passwd' is not a file name"),
        (TokenizedMeta, META, {"scheme": "subword"}, "encoder: required for scheme subword"),
        (
            TokenizedMeta,
            META,
            {"splits": {"train": {"unk_rate": 7}}},
            "splits.train.unk_rate: Input should be less than",
        ),
        (RunStatus, {"status": "ok"}, {"status": "done"}, "status: Input should be 'ok', 'failed'"),
    ],
)
def test_wrong_content_is_one_error_naming_file_key_and_fix(
    tmp_path: Path, kind: type[Artifact], base: dict, change: dict, message: str
) -> None:
    path = write(tmp_path / "a.json", base | change)
    with pytest.raises(TextbenchError) as e:
        kind.read(path, "rerun the stage")
    assert str(e.value).startswith(f"{path}: {message}") and str(e.value).endswith("; rerun the stage")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xff\xfe{", "not valid JSON"),
        (b'{"a": ', "not valid JSON"),
        (b"[1, 2]", "Input should be a valid dictionary"),
        (b"", "not valid JSON"),
    ],
)
def test_unreadable_json_is_one_error(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(TextbenchError, match=f"config.json: {message}.*retrain it \\(textbench train -d "):
        ModelConfig.of(tmp_path)
    (tmp_path / "vocab.json").write_bytes(content)
    with pytest.raises(TextbenchError, match="vocab.json: "):
        read_vocab(tmp_path / "vocab.json", "fix")


def test_retrain_hint_names_the_run() -> None:
    assert retrain(Path("models/reuters/textcnn")) == "retrain it (textbench train -d reuters -m textcnn)"
    assert retrain(Path("reports/reuters/textcnn/seeds/7")) == "retrain it (textbench benchmark -d reuters -m textcnn)"


# --- fuzz: every artifact a command reads, broken every way, through the real CLI --------------------


def broken_versions(path: Path, kind: type[Artifact] | None, rng: random.Random) -> list[tuple[str, bytes]]:
    """(what, bytes) for a JSON artifact: noise, truncations, wrong top-level types, and per checked key a
    deletion (required keys) and a value of another JSON type."""
    good = path.read_bytes()
    out = [
        ("random bytes", rng.randbytes(rng.randint(1, 64))),
        ("empty", b""),
        ("truncated", good[: len(good) // 2]),
        ("a list", b"[]"),
        ("a string", b'"x"'),
        ("null", b"null"),
    ]
    obj = json.loads(good)
    if kind is None:  # vocab.json: a list of tokens
        return out + [
            ("ints", json.dumps(list(range(len(obj)))).encode()),
            ("one token", b'["<pad>"]'),
            ("reordered", json.dumps(obj[::-1]).encode()),
        ]
    swap: dict[type, Any] = {str: 7, int: "x", float: "x", bool: "x", list: "x", dict: 7}
    for key, field in kind.model_fields.items():
        if field.is_required():
            out.append((f"no {key}", json.dumps({k: v for k, v in obj.items() if k != key}).encode()))
        if obj.get(key) is not None:
            out.append((f"{key} of another type", json.dumps(obj | {key: swap[type(obj[key])]}).encode()))
    return out


def run_cli(args: list[str], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """`textbench <args>` in this process: (exit status, stderr); any escaping exception fails the caller."""
    monkeypatch.setattr(sys, "argv", ["textbench", *args])
    code: int | str | None = 0
    try:
        main()
    except SystemExit as e:
        code = e.code
    return int(code or 0), capsys.readouterr().err


def sweep(
    targets: dict[Path, type[Artifact] | None],
    command: Callable[[], tuple[int, str]],
    left_behind: Callable[[], list[Path]],
) -> None:
    rng = random.Random(0)
    bad: list[str] = []
    for path, kind in targets.items():
        good = path.read_bytes()
        for what, content in broken_versions(path, kind, rng):
            path.write_bytes(content)
            try:
                code, err = command()
            except Exception as e:  # a traceback in real life
                bad.append(f"{path.name} {what}: {type(e).__name__}: {e}")
                continue
            errors = [line for line in err.splitlines() if line.startswith("error:")]
            if code != 2 or len(errors) != 1 or "Traceback" in err or path.name not in errors[0] or left_behind():
                bad.append(f"{path.name} {what}: exit {code}, {err.strip()[-300:]!r}, left {left_behind()}")
        path.write_bytes(good)
    assert not bad, "\n".join(bad)


@pytest.mark.slow
def test_fuzz_model_dir_artifacts_through_predict(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    mdir = tmp_path / "models" / "reuters" / "textcnn"
    shutil.copytree(model_dir("textcnn"), mdir)
    (tmp_path / "in.csv").write_text("text\nthe goal\nstock rose\n", encoding="utf-8")
    args = ["predict", str(mdir), str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.jsonl")]
    assert run_cli(args, capsys, monkeypatch)[0] == 0
    (tmp_path / "out.jsonl").unlink()
    targets = {
        mdir / "config.json": ModelConfig,
        mdir / "tokenizer" / "meta.json": TokenizedMeta,
        mdir / "tokenizer" / "vocab.json": None,
    }
    sweep(targets, lambda: run_cli(args, capsys, monkeypatch), lambda: sorted(tmp_path.glob("*out*")))


@pytest.mark.slow
def test_fuzz_report_artifacts_through_report(
    project: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(project, bootstrap=0, datasets=("thucnews",))
    write(
        project / "data" / "prepared" / "thucnews" / "card.json",
        {"labels": ["体育", "科技", "财经"], "totals": {"train": 30, "dev": 3, "test": 3}},
    )
    assert run_cli(["report"], capsys, monkeypatch)[0] == 0
    before = {p: p.read_bytes() for p in (project / "reports").glob("*.*")}
    run = project / "reports" / "thucnews" / "bert"
    targets = {
        run / "metrics.json": RunMetrics,
        status_file(project, "thucnews", "bert"): RunStatus,
        project / "data" / "prepared" / "thucnews" / "card.json": DatasetCard,
        project / "data" / "tokenized" / "thucnews" / "subword" / "meta.json": TokenizedMeta,
    }
    sweep(
        targets,
        lambda: run_cli(["report"], capsys, monkeypatch),
        lambda: [p for p, b in before.items() if p.read_bytes() != b],
    )  # the earlier report stays as it was


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"[]",
        b'{"reuters": {"bert": {"accuracy": "0.9"}}}',
        b'{"reuters": {"bert": {"accuracy": true}}}',
        b'{"reuters": []}',
    ],
)
def test_report_scores_are_read_typed(project: Path, content: bytes) -> None:
    """reports/metrics.json (the model card's CIs) through its one reader: before, the card parsed it by hand."""
    assert read_scores() == {}  # no report yet
    path = project / "reports" / "metrics.json"
    write(path, {"reuters": {"bert": {"accuracy": 0.9, "accuracy_ci_low": 0.88}}})
    assert read_scores()["reuters"]["bert"]["accuracy_ci_low"] == 0.88
    path.write_bytes(content)
    with pytest.raises(TextbenchError, match=r"metrics\.json: .*rerun `textbench report`"):
        read_scores()


def test_params_artifacts_and_archs_word_a_validation_error_alike():
    """One formatter (errors.describe_invalid) for every pydantic error a user sees: the first fault as
    `key: message`, then how many more — for params, an artifact and a model's arch alike."""
    from pipeline.archs import resolve_arch
    from pipeline.config import config_from_dict
    from test_config import minimal

    bad = {
        "params": lambda: config_from_dict(minimal(train={"epochs": 0, "lr": -1.0})),
        "artifact": lambda: TokenizedMeta.parse(
            json.dumps({**META, "pad_id": "x", "max_len": "y"}), "meta.json", "fix"
        ),
        "arch": lambda: resolve_arch("textcnn", {"dropout": 1.5, "embed_dim": 0}),
    }
    for surface, make in bad.items():
        with pytest.raises(TextbenchError) as e:
            make()
        assert re.search(r"[\w.]+: [^(]+ \(\+1 more\)", str(e.value)), (surface, str(e.value))
