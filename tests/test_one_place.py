"""Each fact written once (issue 22): a typed artifact is written through the model its readers read it
with, and every artifact file or directory name is spelled in pipeline/paths.py alone."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from flows import benchmark as bm
from pipeline import artifacts
from pipeline.config import load_config
from pipeline.io import write_json
from test_flow import tiny  # noqa: F401  (the fixture)

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(REPO / "pipeline").rglob("*.py"), *(REPO / "flows").rglob("*.py")])

# The JSON files no typed model of pipeline/artifacts.py reads, and so the only ones written by write_json
# directly; a typed artifact is written by `<Model>(...).write(path)` (Artifact.write).
UNTYPED_JSON_WRITERS = {
    "pipeline/artifacts.py": 1,  # Artifact.write itself
    "pipeline/serve/export.py": 1,  # export/report.json: measurements for people, read by no command
    "pipeline/report/build.py": 1,  # reports/*.json: Outcomes/Environments come dumped by their models
    "pipeline/train/checkpoint.py": 1,  # a resumable optimizer state, read back by the same module
    "pipeline/train/features.py": 1,  # the feature cache's completion marker
    "pipeline/data/download.py": 1,  # a download's receipt
    "pipeline/tokenize/stage.py": 1,  # vocab.json (a list, read by artifacts.read_vocab)
}


def test_typed_artifacts_are_written_only_through_their_model() -> None:
    calls: dict[str, int] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "write_json":
                rel = path.relative_to(REPO).as_posix()
                calls[rel] = calls.get(rel, 0) + 1
    assert calls == UNTYPED_JSON_WRITERS, "a JSON file written as a dict: write a typed artifact through its model"


def test_typed_writers_keep_the_bytes_readers_and_dvc_see(tiny: Path) -> None:  # noqa: F811
    """Every typed artifact of a trained run reads back and writes out to the very bytes the old dict writer
    (write_json of the same record) gave: no key dropped, added or coerced (`3` to `3.0`)."""
    from pipeline.train.stage import train

    cfg = load_config(tiny / "params.yaml")
    job = bm.plan(cfg, models=["textcnn"])[0]
    train(cfg, "tiny", "textcnn", seed=job.seed)
    bm.write_status(job, "ok", 1.0, slot="cpu0", started_at=12.0)
    files = {
        tiny / "data/prepared/tiny/card.json": artifacts.DatasetCard,
        tiny / "data/tokenized/tiny/vocab/meta.json": artifacts.TokenizedMeta,
        Path(job.model_dir) / "config.json": artifacts.ModelConfig,
        Path(job.report_dir) / "metrics.json": artifacts.RunMetrics,
        job.status_path: artifacts.RunStatus,
    }
    for path, kind in files.items():
        written = path.read_bytes()
        write_json(path.with_suffix(".old"), json.loads(written))
        kind.read(path, "").write(path.with_suffix(".new"))
        assert path.with_suffix(".old").read_bytes() == written == path.with_suffix(".new").read_bytes(), path


def _artifact_names() -> set[str]:
    """The file and directory names of the stages' artifacts (pipeline/paths.py)."""
    from pipeline import paths

    named = (paths.CARD, paths.META, paths.CONFIG, paths.TOKENIZER, paths.WEIGHTS, paths.METRICS, paths.PREDICTIONS)
    named += (paths.CURVES_CSV, paths.FIGURES, paths.CURVES, paths.EXPORT, paths.EXPORT_SOURCE, paths.RECEIPT)
    named += (paths.LEARNING, paths.LEARNING_CURVES, paths.VOCAB, paths.ONNX_SKIPPED, *paths.ONNX_FILES.values())
    reports = (paths.cost_json(), paths.outcomes_json(), paths.environment_json(), paths.comparison_md())
    return {*named, *(p.name for p in (*reports, paths.index_html())), paths.reports_root().name}


def test_artifact_names_are_spelled_only_in_paths() -> None:
    """A file name in two modules drifts (issue 22: metrics.json was spelled in five, export/ lived in
    serve/export.py alone and a retrain deleted it): every module builds artifact paths from paths.py."""
    names = _artifact_names()
    assert {"metrics.json", "comparison.md", "index.html", "figures", "curves", "export", "config.json"} <= names
    found = []
    for path in SOURCES:
        if path.name == "paths.py" and path.parent.name == "pipeline":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {id(n.body[0].value) for n in ast.walk(tree) if _documented(n)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                s = node.value
                hit = [n for n in names if s == n or s.endswith(f"/{n}") or s.startswith(f"{n}/")]
                found += [f"{path.relative_to(REPO)}:{node.lineno}: {s!r}" for _ in hit[:1]]
    assert not found, "artifact names outside pipeline/paths.py:\n" + "\n".join(found)


def _documented(node: ast.AST) -> bool:
    """A module, class or function whose first statement is its docstring (prose, not a path)."""
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    first = getattr(node, "body", [None])[0] if isinstance(node, kinds) and node.body else None
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
