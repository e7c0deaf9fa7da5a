"""Optional dependencies: a command whose extra is missing says, in one line, which extra to install
(pipeline/extras.py); the extras named there are pyproject's, and `dev` (what `make setup` installs) has them all."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from pipeline.cli import main
from pipeline.errors import TextbenchError
from pipeline.extras import INSTALL, require


def test_serve_without_its_extra_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # what `import uvicorn` meets where it is not installed
    monkeypatch.setattr(sys, "argv", ["textbench", "serve", "--port", "1"])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err == "error: uvicorn is not installed: pip install 'textbench[serve]'\n"


@pytest.mark.parametrize("module", sorted(INSTALL))
def test_each_optional_module_names_what_installs_it(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(TextbenchError, match=re.escape(f"{module} is not installed: pip install '{INSTALL[module]}'")):
        require(module)


def test_a_broken_install_is_not_mistaken_for_a_missing_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lime").mkdir()
    (tmp_path / "lime" / "__init__.py").write_text("import textbench_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lime", raising=False)
    with pytest.raises(ModuleNotFoundError, match="textbench_no_such_dependency"):
        require("lime")


def test_the_extras_named_are_pyprojects() -> None:
    """Read from the installed distribution's metadata (what pip made of pyproject.toml): no TOML parser,
    which the standard library has only from Python 3.11 (the project supports 3.10)."""
    dist = metadata.distribution("textbench")
    reqs = [Requirement(r) for r in dist.requires or []]
    extras = {
        name: [r for r in reqs if r.marker is not None and r.marker.evaluate({"extra": name})]
        for name in dist.metadata.get_all("Provides-Extra") or []
    }
    for module, target in INSTALL.items():
        if target.startswith("textbench["):
            assert module.replace("_", "-") in {r.name for r in extras[target[len("textbench[") : -1]]}, target
    (itself,) = [
        r for r in extras["dev"] if r.name == "textbench"
    ]  # `make setup` installs dev: the tests cover every extra
    assert itself.extras == {"serve", "export", "explain", "dask"}
