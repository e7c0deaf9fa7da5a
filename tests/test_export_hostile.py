"""`export` and `predict` on hostile model dirs and inputs: writes stay inside the model dir (a symbolic
link on the way is refused), `export` checks its evaluation data matches the model before anything is
written and swaps export/ in whole, `predict -o` is checked before predicting, and `--variant onnx`
on a model whose ONNX export failed says why. Each refusal is one `error:` line, exit 2, nothing written."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pipeline import paths
from pipeline.errors import TextbenchError
from pipeline.io import sha256_file
from pipeline.serve import export as export_module
from pipeline.serve.predict import writable
from pipeline.serve.predictor import Predictor
from serve_models import model_dir, trained_root
from test_data_members import textbench


def one_error(code: int, err: str, *names: str) -> str:
    """The single `error:` line of a refused command, checked to name each of `names`."""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert all(name in errors[0] for name in names), (names, errors[0])
    return errors[0]


@pytest.fixture
def textcnn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the trained textcnn model dir (no export/) in the trained project."""
    monkeypatch.setenv("TEXTBENCH_ROOT", str(trained_root()))
    target = tmp_path / "models" / "reuters" / "textcnn"
    shutil.copytree(model_dir("textcnn"), target, ignore=shutil.ignore_patterns("export", ".export*"))
    return target


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- 1. writes only inside the model dir, swapped in whole ------------------------------------------


def test_inside_refuses_a_path_outside_or_through_a_link(tmp_path: Path) -> None:
    root = tmp_path / "model"
    (root / "real").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere")
    (root / "dangling").symlink_to(tmp_path / "missing")
    assert paths.inside(root, root / "real" / "new" / "file") == root / "real" / "new" / "file"
    linked_root = tmp_path / "linked-model"
    linked_root.symlink_to(root)  # the root itself may be a link (models/ on another disk)
    assert paths.inside(linked_root, linked_root / "real") == linked_root / "real"
    for path in (root / "link", root / "link" / "deeper" / "file", root / "dangling"):
        with pytest.raises(TextbenchError, match="a symbolic link"):
            paths.inside(root, path)
    for path in (tmp_path / "elsewhere", root / ".." / "elsewhere"):
        with pytest.raises(TextbenchError, match="outside"):
            paths.inside(root, path)


@pytest.mark.parametrize("target", ["dir", "missing"])
def test_symlinked_export_dir_is_refused_and_its_target_untouched(monkeypatch, capsys, textcnn, tmp_path, target):
    victim = tmp_path / "victim"
    if target == "dir":
        victim.mkdir()
        (victim / "README.md").write_text("someone else's readme\n")
    (textcnn / "export").symlink_to(victim)
    before = tree(victim) if victim.exists() else None
    one_error(*textbench(monkeypatch, capsys, "export", str(textcnn)), str(textcnn / "export"), "symbolic link")
    assert (tree(victim) if victim.exists() else None) == before
    assert (textcnn / "export").is_symlink()


def test_links_inside_an_old_export_are_replaced_not_followed(monkeypatch, capsys, textcnn, tmp_path) -> None:
    victim = tmp_path / "victim.md"
    victim.write_text("someone else's file\n")
    (textcnn / "export").mkdir()
    for name in ("README.md", "report.json"):
        (textcnn / "export" / name).symlink_to(victim)
    code, err = textbench(monkeypatch, capsys, "export", str(textcnn), "--max-docs", "8")
    assert code == 0, err
    assert victim.read_text() == "someone else's file\n"
    assert not any(p.is_symlink() for p in (textcnn / "export").iterdir())
    assert json.loads((textcnn / "export" / "report.json").read_text())["eval_docs"] == 8


def test_a_failed_export_leaves_the_previous_one_whole(monkeypatch, textcnn) -> None:
    export_module.export(textcnn, onnx=False, max_docs=8)
    with open(textcnn / "export" / "README.md", "a") as card:
        card.write("the previous export's card\n")  # so a rewritten card would show
    before = tree(textcnn / "export")

    def fail(*_args, **_kwargs):
        raise TextbenchError("measuring failed")

    monkeypatch.setattr(export_module, "measure", fail)
    with pytest.raises(TextbenchError, match="measuring failed"):
        export_module.export(textcnn, onnx=False, max_docs=8)
    assert tree(textcnn / "export") == before
    assert sorted(p.name for p in textcnn.iterdir() if p.name.startswith(".export")) == []


# --- 2. evaluation data that does not match the model ------------------------------------------------


def tokenized(scheme: str) -> Path:
    return trained_root() / "data" / "tokenized" / "reuters" / scheme


def other_vocabulary(tmp: Path) -> Path:
    """The vocab scheme's tokenized dir as a tokenize run with another vocabulary writes it."""
    out = tmp / "other-vocab"
    shutil.copytree(tokenized("vocab"), out)
    itos = json.loads((out / "vocab.json").read_text())
    (out / "vocab.json").write_text(json.dumps(itos[:2] + itos[:1:-1]))
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps(meta | {"tokenizer_sha256": sha256_file(out / "vocab.json")}))
    return out / "test.parquet"


def text_split(tmp: Path, labels: list) -> Path:
    path = tmp / "texts.parquet"
    pq.write_table(pa.table({"text": ["goal today", "stock market"] * (len(labels) // 2), "label": labels}), path)
    return path


def numbers_as_text(tmp: Path) -> Path:
    pq.write_table(pa.table({"text": [1, 2], "label": ["sports", "finance"]}), tmp / "numbers.parquet")
    return tmp / "numbers.parquet"


def shifted_label_ids(tmp: Path) -> Path:
    out = tmp / "shifted"
    shutil.copytree(tokenized("vocab"), out)
    table = pq.read_table(out / "test.parquet")
    labels = pa.compute.add(table.column("label"), pa.scalar(2, table.schema.field("label").type))
    pq.write_table(table.set_column(table.column_names.index("label"), "label", labels), out / "test.parquet")
    return out / "test.parquet"


def no_meta(tmp: Path) -> Path:
    shutil.copy(tokenized("vocab") / "test.parquet", tmp / "ids.parquet")
    return tmp / "ids.parquet"


def empty(tmp: Path) -> Path:
    pq.write_table(pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.string())}), tmp / "e.parquet")
    return tmp / "e.parquet"


MISMATCHES = {  # case: (eval file builder or None, extra args, what the error says)
    "other-scheme": (lambda tmp: tokenized("subword") / "test.parquet", [], "scheme 'subword' vs 'vocab'"),
    "other-vocabulary": (other_vocabulary, [], "tokenizer_sha256"),
    "ids-without-meta": (no_meta, [], "without a meta.json"),
    "label-ids-out-of-range": (shifted_label_ids, [], "label ids [2, 3] are outside"),
    "other-label-names": (lambda tmp: text_split(tmp, ["SPORTS", "finance"] * 2), [], "labels ['SPORTS']"),
    "integer-labels": (lambda tmp: text_split(tmp, [1, 0] * 2), [], "holds int64 values"),
    "integer-texts": (numbers_as_text, [], "column 'text' holds int64 values"),
    "no-documents": (empty, [], "no documents"),
    "max-docs-0": (None, ["--max-docs", "0"], "--max-docs must be at least 1, got 0"),
    "max-docs-negative": (None, ["--max-docs", "-5"], "--max-docs must be at least 1, got -5"),
}


@pytest.mark.parametrize("case", MISMATCHES)
def test_evaluation_data_that_does_not_match_the_model_is_refused_before_writing(
    monkeypatch, capsys, textcnn, tmp_path, case
) -> None:
    make, args, says = MISMATCHES[case]
    eval_args = ["--eval", str(path := make(tmp_path))] if make else []
    line = one_error(*textbench(monkeypatch, capsys, "export", str(textcnn), "--onnx", *eval_args, *args), says)
    assert make is None or str(path) in line
    assert not (textcnn / "export").exists()


def test_model_dir_outside_its_project_writes_nothing_without_eval_data(monkeypatch, capsys, textcnn, tmp_path):
    monkeypatch.setenv("TEXTBENCH_ROOT", str(tmp_path / "elsewhere"))
    one_error(*textbench(monkeypatch, capsys, "export", str(textcnn), "--onnx"), "evaluation data not found")
    assert not (textcnn / "export").exists()


def test_matching_data_of_either_kind_is_measured(textcnn, tmp_path) -> None:
    ids = export_module.export(textcnn, onnx=False, max_docs=8)
    texts = export_module.export(textcnn, onnx=False, eval_file=text_split(tmp_path, ["sports", "finance"] * 4))
    assert ids["eval_docs"] == texts["eval_docs"] == 8
    assert texts["runtimes"]["fp32"]["accuracy"] == 1.0


# --- 5. predict -o checked before predicting; --variant onnx says why there is no ONNX file ---------


def output_cases(tmp: Path) -> dict[str, tuple[Path, str]]:
    (tmp / "existing-dir").mkdir()
    (tmp / "a-file").write_text("x")
    return {
        "existing-dir": (tmp / "existing-dir", "is a directory"),
        "parent-is-a-file": (tmp / "a-file" / "sub" / "out.csv", "is a file, not a directory"),
    }


@pytest.mark.parametrize("case", ["existing-dir", "parent-is-a-file"])
def test_predict_output_is_checked_before_predicting(monkeypatch, capsys, tmp_path, case) -> None:
    output, says = output_cases(tmp_path)[case]
    (tmp_path / "in.csv").write_text("text\ngoal\nstock\n")

    def predicted(*_args, **_kwargs):
        raise AssertionError("predicted before checking -o")

    monkeypatch.setattr(Predictor, "predict_proba", predicted)
    args = ("predict", str(model_dir("textcnn")), str(tmp_path / "in.csv"), "-o", str(output))
    one_error(*textbench(monkeypatch, capsys, *args), str(output), says)


def test_onnx_variant_after_a_failed_onnx_export_gives_export_s_reason(monkeypatch, capsys, textcnn) -> None:
    def unsupported(*_args, **_kwargs):
        raise RuntimeError("Unsupported operator aten::made_up")

    monkeypatch.setattr(torch.onnx, "export", unsupported)
    code, err = textbench(monkeypatch, capsys, "export", str(textcnn), "--onnx", "--max-docs", "4")
    assert code == 0, err
    notes = json.loads((textcnn / "export" / "report.json").read_text())["notes"]
    assert any("onnx skipped" in n and "aten::made_up" in n for n in notes)
    (textcnn / "in.txt").write_text("goal\n")
    args = ("predict", str(textcnn), str(textcnn / "in.txt"), "--variant", "onnx")
    line = one_error(*textbench(monkeypatch, capsys, *args), "could not write it", "aten::made_up")
    assert "run `textbench export" not in line


def test_output_in_an_unwritable_directory_is_refused() -> None:
    """As an unprivileged user (root writes anywhere: the check runs in a child dropped to `nobody`)."""
    locked = Path(tempfile.mkdtemp(prefix="textbench-locked-"))  # not under pytest's 0700 tmp: nobody must reach it
    try:
        locked.chmod(0o555)
        if os.geteuid() != 0:
            with pytest.raises(TextbenchError, match="permission denied"):
                writable(str(locked / "sub" / "out.csv"))
            return
        pid = os.fork()
        if pid == 0:  # the child: exit 0 only if refused with the right reason
            try:
                os.setgid(65534)
                os.setuid(65534)
                writable(str(locked / "sub" / "out.csv"))
                os._exit(1)
            except TextbenchError as e:
                os._exit(0 if f"cannot write in {locked}" in str(e) else 2)
            except BaseException:
                os._exit(3)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    finally:
        shutil.rmtree(locked)
