"""`textbench predict` / `Predictor` on models trained by the real trainer (tests/serve_models.py):
tokenization exactly as trained, every row back in order in every format, --min-confidence,
stdin, column collisions, and one clear error per bad input."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import TextbenchError
from pipeline.serve.api import create_app
from pipeline.serve.explain import explain
from pipeline.serve.predict import predict_file
from pipeline.serve.predictor import Predictor
from serve_models import model_dir, trained_root

TEXTS = [
    "the goal was great",
    "stock market news",
    "",
    "people said the week",
    "goal and stock",
    'a stock, a goal; and "quotes"\nacross lines',
    "team news today",
    "board said stock rose",
] * 5
runner = CliRunner()


@pytest.fixture(scope="module")
def textcnn() -> Predictor:
    return Predictor.load(model_dir("textcnn"), batch_size=4)


@pytest.mark.parametrize("name", ["textcnn", pytest.param("bert", marks=pytest.mark.slow)])
def test_predictor_reproduces_the_trainers_test_predictions(name: str) -> None:
    """Same tokenization and weights as training: the probabilities the trainer wrote are recomputed."""
    preds = pq.read_table(trained_root() / "reports" / "reuters" / name / "predictions.parquet").to_pandas()
    predictor = Predictor.load(model_dir(name), batch_size=7)
    probs = predictor.predict_proba(preds["text"].tolist())
    np.testing.assert_allclose(probs, np.stack(preds["probs"]), atol=1e-4)
    assert [predictor.labels[i] for i in probs.argmax(1)] == preds["pred"].tolist()


def test_batching_and_length_sorting_do_not_change_results(textcnn: Predictor) -> None:
    one_by_one = np.concatenate([textcnn.predict_proba([t]) for t in TEXTS])
    np.testing.assert_allclose(textcnn.predict_proba(TEXTS), one_by_one, atol=1e-5)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_every_row_round_trips_in_order(textcnn: Predictor, tmp_path: Path, suffix: str) -> None:
    df = pd.DataFrame({"id": [f"r{i}" for i in range(len(TEXTS))], "body": TEXTS, "label": "gold"})
    src = tmp_path / f"in{suffix}"
    {
        ".csv": lambda: df.to_csv(src, index=False),
        ".tsv": lambda: df.to_csv(src, index=False, sep="\t"),
        ".jsonl": lambda: df.to_json(src, orient="records", lines=True, force_ascii=False),
        ".parquet": lambda: df.to_parquet(src),
    }[suffix]()
    out, rows = predict_file(textcnn, str(src), None, text_column="body", top_k=2, chunk_rows=6)
    assert out == str(tmp_path / f"in.predictions{suffix}") and rows == len(TEXTS)
    got = _read(Path(out))
    assert list(got.columns) == [
        "id",
        "body",
        "input_label",
        "label",
        "confidence",
        "top1_label",
        "top1_prob",
        "top2_label",
        "top2_prob",
        "needs_review",
    ]
    assert got["id"].tolist() == df["id"].tolist() and got["body"].fillna("").tolist() == TEXTS
    assert (got["input_label"] == "gold").all()
    probs = textcnn.predict_proba(TEXTS)
    has = np.array([bool(t.strip()) for t in TEXTS])  # "" rows get no label (EncodedBatch.classifiable)
    expected = [textcnn.labels[i] if h else None for i, h in zip(probs.argmax(1), has)]
    assert [x if isinstance(x, str) and x else None for x in got["label"]] == expected  # csv: "", jsonl: NaN
    known = got[has]
    np.testing.assert_allclose(pd.to_numeric(known["confidence"]), probs.max(1)[has], rtol=1e-5)
    assert (known["top1_label"] == known["label"]).all()
    assert (pd.to_numeric(known["top1_prob"]) >= pd.to_numeric(known["top2_prob"])).all()
    assert got["needs_review"].tolist() == (~has).tolist()


def test_min_confidence_marks_exactly_the_uncertain_rows(textcnn: Predictor, tmp_path: Path) -> None:
    pd.DataFrame({"text": TEXTS}).to_parquet(tmp_path / "in.parquet")
    confidence = textcnn.predict_proba(TEXTS).max(1)
    threshold = float(np.median(confidence))
    out, _ = predict_file(
        textcnn, str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet"), min_confidence=threshold, chunk_rows=5
    )
    got = pd.read_parquet(out)
    assert got["needs_review"].tolist() == (got["confidence"].isna() | (got["confidence"] < threshold)).tolist()
    assert 0 < got["needs_review"].sum() < len(TEXTS)


def test_stdin_lines_to_jsonl_on_stdout() -> None:
    result = runner.invoke(
        app, ["predict", str(model_dir("bert")), "-", "--top-k", "1"], input="the goal was great\nstock prices fell\n\n"
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["the goal was great", "stock prices fell", ""]
    assert [r["label"] for r in rows[:2]] == ["sports", "finance"]
    assert set(rows[0]) == {"text", "label", "confidence", "top1_label", "top1_prob", "needs_review"}


def test_cli_writes_the_output_file(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("text\ngoal\nstock\n", encoding="utf-8")
    result = runner.invoke(
        app,
        [
            "predict",
            str(model_dir("textcnn")),
            str(tmp_path / "in.csv"),
            "-o",
            str(tmp_path / "out.jsonl"),
            "--min-confidence",
            "1.0",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == ["sports", "finance"] and all(r["needs_review"] for r in rows)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "input file not found"),
        ("suffix", "unknown file type"),
        ("column", "no column 'text'"),
        ("json", "in.jsonl: line 2: not JSON"),
        ("k", "--top-k must be at least 1"),
        ("utf8", r"in.csv: not UTF-8 \(byte 0xff at position 3 of line 3\)"),
        ("parquet", "in.parquet: not a Parquet file"),
    ],
)
def test_bad_input_is_one_clear_error_and_no_output(
    textcnn: Predictor, tmp_path: Path, case: str, expected: str
) -> None:
    src = {
        "missing": tmp_path / "nope.csv",
        "suffix": tmp_path / "in.xlsx",
        "column": tmp_path / "in.csv",
        "json": tmp_path / "in.jsonl",
        "k": tmp_path / "in.csv",
        "utf8": tmp_path / "in.csv",
        "parquet": tmp_path / "in.parquet",
    }[case]
    if case in ("column", "k"):
        src.write_text("body\nhello\n", encoding="utf-8")
    if case == "json":
        src.write_text('{"text": "ok"}\n{broken\n', encoding="utf-8")
    if case == "utf8":
        src.write_bytes(b"text\nfine\nbro\xffken\n")
    if case in ("suffix", "parquet"):
        src.write_text("text\nnot parquet at all\n", encoding="utf-8")
    with pytest.raises(TextbenchError, match=expected):
        predict_file(textcnn, str(src), str(tmp_path / "out.csv"), top_k=0 if case == "k" else 3, chunk_rows=1)
    assert not (tmp_path / "out.csv").exists()
    assert not list(tmp_path.glob(".out.csv.*"))


@pytest.mark.parametrize("size", ["0", "-1"])
def test_batch_size_below_one_is_refused(tmp_path: Path, size: str) -> None:
    """Before: -1 labelled every row with the first class at uniform probability (exit 0); 0 was a traceback."""
    (tmp_path / "in.csv").write_text("text\ngoal\nstock\n", encoding="utf-8")
    result = runner.invoke(app, ["predict", str(model_dir("textcnn")), str(tmp_path / "in.csv"), "--batch-size", size])
    assert result.exit_code == 2 and "--batch-size" in result.output
    assert not (tmp_path / "in.predictions.csv").exists()
    with pytest.raises(TextbenchError, match=f"batch size must be at least 1, got {size}"):
        Predictor.load(model_dir("textcnn"), batch_size=int(size))


def test_rows_without_text_get_no_label_as_the_api_refuses_them(textcnn: Predictor, tmp_path: Path) -> None:
    """One rule (EncodedBatch.classifiable) for both: before, predict gave blank rows a confident label while serve said 422."""
    texts = ["goal", "", "   ", "\t\n", None, "stock"]
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), tmp_path / "in.parquet")
    out, _ = predict_file(textcnn, str(tmp_path / "in.parquet"), str(tmp_path / "out.jsonl"))
    rows = [json.loads(line) for line in Path(out).read_text(encoding="utf-8").splitlines()]
    assert [r["label"] for r in rows] == ["sports", None, None, None, None, "finance"]
    assert [r["needs_review"] for r in rows] == [False, True, True, True, True, False]
    assert all(r["confidence"] is None and r["top1_label"] is None and r["top1_prob"] is None for r in rows[1:5])
    client = TestClient(create_app(trained_root() / "models"), raise_server_exceptions=False)
    for text in texts[1:4]:
        response = client.post("/predict", json={"model": "reuters/textcnn", "text": text})
        assert response.status_code == 422 and "empty text" in response.json()["detail"]
    with pytest.raises(TextbenchError, match="nothing to explain"):
        explain(textcnn, texts[2])


def test_a_text_column_that_is_not_text_is_refused(textcnn: Predictor, tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"text": 5}\n{"text": 7}\n', encoding="utf-8")
    with pytest.raises(TextbenchError, match="column 'text' holds int64 values, not text"):
        predict_file(textcnn, str(tmp_path / "in.jsonl"), str(tmp_path / "out.csv"))
    assert not (tmp_path / "out.csv").exists()


def test_not_a_model_dir_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", str(tmp_path), "-"], input="x\n")
    assert result.exit_code != 0
    assert "not a trained model directory" in str(result.exception)


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"labels": ["finance", "sports", "weather"]}, "config.json: labels: 3 classes, but num_labels is 2"),
        ({"num_labels": -1}, "config.json: num_labels: Input should be greater than or equal to 2"),
        (
            {"arch": {"kernel_sizes": []}},
            "config.json: models.textcnn.arch.kernel_sizes: Tuple should have at least 1 item",
        ),
    ],
)
def test_inconsistent_model_config_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, change: dict, expected: str
) -> None:
    """Through the real entry point: exit 2, one `error:` line naming the file and the fix, no traceback."""
    from pipeline.cli import main

    mdir = tmp_path / "reuters" / "textcnn"
    shutil.copytree(model_dir("textcnn"), mdir)
    config = json.loads((mdir / "config.json").read_text())
    (mdir / "config.json").write_text(json.dumps(config | change))
    monkeypatch.setattr(sys, "argv", ["textbench", "predict", str(mdir), "-"])
    monkeypatch.setattr(sys, "stdin", io.StringIO("goal\n"))
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("error:") == 1 and expected in err and "Traceback" not in err
    assert "retrain it (textbench train -d reuters -m textcnn)" in err


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(
        path, sep="\t" if path.suffix == ".tsv" else ",", dtype={"id": str, "body": str}, keep_default_na=False
    )


@pytest.mark.parametrize("seed", range(3))
def test_fuzz_predict_inputs_exit_2_with_one_error_line(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Random bytes (never valid UTF-8: each holds 0xff) as every input format and on stdin, through the
    real entry point: exit 2, one `error:` line, no traceback, no output file or temporary left."""
    from pipeline.cli import main

    rng = np.random.default_rng(seed)
    for suffix in (".csv", ".tsv", ".jsonl", ".parquet", "-"):
        data = bytes(rng.integers(0, 256, int(rng.integers(1, 400)), dtype=np.uint8)) + b"\xff\n"
        out = tmp_path / "out.csv"
        args = ["textbench", "predict", str(model_dir("textcnn")), "-", "-o", str(out)]
        if suffix == "-":
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
        else:
            (tmp_path / f"in{suffix}").write_bytes(data)
            args[3] = str(tmp_path / f"in{suffix}")
        monkeypatch.setattr(sys, "argv", args)
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            main()
        err = capsys.readouterr().err
        assert e.value.code == 2, (suffix, err)
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, (suffix, err)
        assert not out.exists() and not list(tmp_path.glob(".out.csv*")), suffix
