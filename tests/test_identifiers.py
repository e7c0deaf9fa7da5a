"""Names are not paths: a params name that becomes a path component (dataset key, archive file name)
must be a plain name, refused at load by every command, and pipeline/paths.py hands out no path from a
name that could leave its base, whoever calls it."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import base_params, write_params
from pipeline import paths
from pipeline.errors import TextbenchError
from test_artifacts import run_cli

# Spellings of "somewhere else": parent steps, nested steps, absolute, Windows separators, the bare
# dot names, NUL, empty, and a name that is a path though it stays inside.
TRAVERSALS = ["../victim", "../../../victim", "a/../../b", "/tmp/victim", "..\\victim", "..", ".", "a\0b", "", "a/b"]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def nested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project two levels below tmp_path, with a CSV corpus and a victim dir beside the project."""
    proj = tmp_path / "outer" / "proj"
    proj.mkdir(parents=True)
    (proj / "corpus.csv").write_text("text,label\n" + "".join(f"doc {i},{'ab'[i % 2]}\n" for i in range(60)))
    (tmp_path / "outer" / "victim").mkdir()
    (tmp_path / "outer" / "victim" / "keep.txt").write_text("precious")
    monkeypatch.chdir(proj)
    monkeypatch.setenv("TEXTBENCH_ROOT", str(proj))
    monkeypatch.delenv("TEXTBENCH_MIRROR", raising=False)
    return proj


@pytest.mark.parametrize("command", ["download", "prepare", "tokenize"])
# a dot would also split DVC's datasets.${item}; reports/'s own folders would mix a dataset's runs into them
@pytest.mark.parametrize("name", [*TRAVERSALS, "imdb.v2", *paths.REPORTS_OWN])
def test_dataset_key_that_is_a_path_is_refused_at_load(nested, capsys, monkeypatch, command, name):
    params = base_params()
    params["datasets"][name] = {"kind": "local", "path": "corpus.csv"}
    write_params(nested, params)
    before = tree(nested.parents[1])
    code, err = run_cli([command, "-d", name], capsys, monkeypatch)
    assert code == 2 and err.startswith("error: params.yaml: datasets: key ") and err.count("\n") == 1, err
    assert tree(nested.parents[1]) == before  # nothing written, inside the project or beside it


@pytest.mark.parametrize("name", TRAVERSALS[:-3] + ["a/b.zip"])
def test_archive_filename_that_is_a_path_is_refused_at_load(nested, capsys, monkeypatch, name):
    params = base_params()
    params["datasets"]["thucnews"]["filename"] = name
    write_params(nested, params)
    before = tree(nested.parents[1])
    code, err = run_cli(["download", "-d", "thucnews"], capsys, monkeypatch)
    assert code == 2 and "datasets.thucnews.filename: " in err and err.count("\n") == 1, err
    assert tree(nested.parents[1]) == before


BUILDERS = {
    "prepared_dir": lambda n: paths.prepared_dir(n),
    "tokenized_dir": lambda n: paths.tokenized_dir("ds", n),
    "features_dir": lambda n: paths.features_dir(n),
    "model_dir": lambda n: paths.model_dir("ds", n),
    "report_dir": lambda n: paths.report_dir(n, "m"),
    "raw_file": lambda n: paths.raw_file("ds", n),
    "seed_dir": lambda n: paths.seed_dir(paths.model_dir("ds", "m"), n),
    "job_status": lambda n: paths.job_status("ds", n, 1),
}


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("name", TRAVERSALS)
def test_no_builder_hands_out_a_path_from_a_name_that_is_not_plain(project, builder, name):
    """The second line of defence: a name that skipped params validation (code, a CLI flag) is still refused."""
    with pytest.raises(TextbenchError, match="is not a plain name"):
        BUILDERS[builder](name)


@pytest.mark.parametrize("name", ["reuters", "reuters_multi", "sst-2", "v1.2", "新闻", "-1", ".status"])
def test_plain_names_pass(project, name):
    assert paths.plain_name_problem(name) is None
    assert paths.model_dir(name, name).parent.parent == project / "models"
