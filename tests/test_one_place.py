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
