"""A params file is a file users edit by hand (issue 23.3): a key given twice at any level is an error
naming the key and both lines (YAML itself keeps the last one silently), the top level is a mapping,
the file is UTF-8 (the error names the byte), and aliases are refused, so no file can blow up into
gigabytes at load. The same reader serves `textbench profile` (profiles/*.yaml)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from conftest import base_params
from pipeline import profiles
from pipeline.config import load_config
from pipeline.errors import TextbenchError


def params_text() -> str:
    return yaml.safe_dump(base_params(), sort_keys=False, allow_unicode=True)


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "params.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_the_base_params_load(tmp_path):
    load_config(write(tmp_path, params_text()))


NESTED = "    max_len: 48\n"


@pytest.mark.parametrize(
    "edit,key",
    [
        (lambda t: t + "train:\n  epochs: 3\n", "train"),  # a second top-level block appended as an override
        (lambda t: t + "seed: 7\n", "seed"),
        (lambda t: t.replace(NESTED, NESTED + NESTED.replace("48", "16"), 1), "max_len"),  # two levels down
        (lambda t: t + "families: {classic: {arch: {dropout: 0.1, dropout: 0.2}}}\n", "dropout"),  # flow style
    ],
)
def test_a_key_given_twice_is_an_error_naming_it_and_both_lines(tmp_path, edit, key):
    text = edit(params_text())
    path = write(tmp_path, text)
    with pytest.raises(TextbenchError) as e:
        load_config(path)
    msg = str(e.value)
    assert str(path) in msg and f"'{key}'" in msg, msg
    lines = [int(n) for n in re.findall(r"line (\d+)", msg)]
    assert len(lines) == 2 and lines[0] <= lines[1], msg
    assert all(re.search(rf"(^|[{{,]) *{key}:", text.splitlines()[n - 1]) for n in lines), (msg, lines)


@pytest.mark.parametrize("text", ["- seed: 1\n- train: {}\n", "42\n", "'just a string'\n", "[]\n"])
def test_the_top_level_must_be_a_mapping(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(TextbenchError, match="top level must be a mapping"):
        load_config(path)


@pytest.mark.parametrize("bad", [b"\xff", b"\xe9t\xe9", b"\xc3(", b"\xed\xa0\x80"])  # latin-1, bare, surrogate
def test_a_file_that_is_not_utf8_names_the_byte(tmp_path, bad):
    head = params_text().encode()
    path = write(tmp_path, head + b"# " + bad + b"\n")
    with pytest.raises(TextbenchError) as e:
        load_config(path)
    msg = str(e.value)
    assert "not UTF-8" in msg and f"offset {len(head) + 2}" in msg and "\n" not in msg, msg


def bomb(depth: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, depth)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("where", ["top", "arch"])
def test_aliases_are_refused_quickly(tmp_path, where):
    text = bomb(9)
    if where == "arch":
        text = params_text() + "families:\n  classic:\n    arch:\n" + "".join(f"      {x}\n" for x in text.splitlines())
    path = write(tmp_path, text)
    start = time.monotonic()
    with pytest.raises(TextbenchError, match=r"line \d+: YAML aliases"):
        load_config(path)
    assert time.monotonic() - start < 1.0


def test_profiles_read_by_the_same_rules(tmp_path):
    params = write(tmp_path, params_text())
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "fast.yaml").write_text("train:\n  epochs: 1\ntrain:\n  epochs: 2\n", encoding="utf-8")
    with pytest.raises(TextbenchError, match=r"fast.yaml: duplicate key 'train' \(line 1 and line 3\)"):
        profiles.switch(params, "fast")
    assert params.read_text(encoding="utf-8") == params_text()  # untouched
