"""Bytes in, text out (issue 21.4): every reader of user text — stdin, CSV/TSV/JSONL files, request
bodies, params files — decodes by one policy (pipeline/io.py `decode_utf8` / `check_text`): UTF-8 or
one error naming the line and the byte; nothing undecodable (surrogate escapes, `\\ud800` JSON escapes)
reaches Arrow, JSON or a tokenizer, so none of them is a traceback or a 500."""

from __future__ import annotations

import io
import json
import sys

import pytest
from fastapi.testclient import TestClient

from pipeline.serve.api import create_app
from serve_models import model_dir, trained_root
from test_artifacts import run_cli

# not UTF-8: a Latin-1 letter, a truncated sequence, an encoded surrogate, an overlong '/', a bare continuation
BAD = [b"caf\xe9", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80x"]


def stdin_of(monkeypatch, data: bytes) -> None:
    """stdin as Python opens it under the C/POSIX locale: undecodable bytes become surrogate escapes."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape"))


def one_error(status: int, err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.mark.parametrize("bad", BAD, ids=repr)
def test_predict_stdin_not_utf8_is_one_line_naming_line_and_byte(tmp_path, capsys, monkeypatch, bad):
    stdin_of(monkeypatch, b"the goal\nstock rose " + bad + b" today\n")
    out = tmp_path / "out.jsonl"
    line = one_error(*run_cli(["predict", str(model_dir("textcnn")), "-", "-o", str(out)], capsys, monkeypatch))
    with pytest.raises(UnicodeDecodeError) as e:
        bad.decode("utf-8")
    assert "stdin: not UTF-8" in line and "line 2" in line and f"byte 0x{bad[e.value.start]:02x}" in line, line
    assert not out.exists()


def test_predict_stdin_utf8_still_reads(tmp_path, capsys, monkeypatch):
    stdin_of(monkeypatch, "\ufeffthe goal\nstock rosé\n".encode())
    out = tmp_path / "out.jsonl"
    assert run_cli(["predict", str(model_dir("textcnn")), "-", "-o", str(out)], capsys, monkeypatch)[0] == 0
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == ["the goal", "stock rosé"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
@pytest.mark.parametrize("bad", BAD[:3], ids=repr)
def test_predict_files_not_utf8_name_line_and_byte(tmp_path, capsys, monkeypatch, suffix, bad):
    path = tmp_path / f"in{suffix}"
    rows = ["the goal", "stock rose", "market"]
    body = [json.dumps({"text": t}) for t in rows] if suffix == ".jsonl" else ["text", *rows]
    data = "\n".join(body).encode().replace(b"market", b"mark" + bad + b"et") + b"\n"
    path.write_bytes(data)
    line = one_error(*run_cli(["predict", str(model_dir("textcnn")), str(path)], capsys, monkeypatch))
    number = data.splitlines().index(next(x for x in data.splitlines() if bad in x)) + 1
    assert f"{path}: not UTF-8" in line and f"line {number}" in line, line
    assert not list(tmp_path.glob("*predictions*"))


@pytest.mark.parametrize("escape", ["\\ud800", "\\udcff", "a\\udfffb"])
def test_jsonl_surrogate_escapes_are_not_text(tmp_path, capsys, monkeypatch, escape):
    path = tmp_path / "in.jsonl"
    path.write_text(f'{{"text": "the goal"}}\n{{"text": "x{escape}"}}\n', encoding="utf-8")
    line = one_error(*run_cli(["predict", str(model_dir("textcnn")), str(path)], capsys, monkeypatch))
    assert f"{path}: line 2: 'text': not text (a lone surrogate" in line, line


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(trained_root() / "models"), raise_server_exceptions=False)


@pytest.mark.parametrize(
    "endpoint,body",
    [
        ("predict", '{"text": "goal \\ud800"}'),
        ("predict", '{"texts": ["goal", "\\udcff"]}'),
        ("predict", '{"text": "goal", "model": "reuters/\\ud83d"}'),
        ("predict", '{"text": "goal", "\\ud800": 1}'),
        ("explain", '{"text": "stock \\udfff rose"}'),
        ("explain", '{"text": "goal", "target": "\\ud800"}'),
        ("explain", '{"text": "goal", "model": "\\udc80"}'),
    ],
)
def test_api_surrogate_escapes_are_a_422(client, endpoint, body):
    r = client.post(f"/{endpoint}", content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422 and isinstance(r.json()["detail"], str), r.text
