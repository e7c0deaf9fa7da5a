"""Shared fixtures: an isolated project root per test, and the real corpora when present."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("TEXTBENCH_CORPORA", REPO.parent / "shared" / "corpora"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway project root (cwd and TEXTBENCH_ROOT) holding a copy of the real params.yaml."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEXTBENCH_ROOT", str(tmp_path))
    monkeypatch.delenv("TEXTBENCH_MIRROR", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary local Prefect server (SQLite, loopback) for the whole session; PREFECT_API_URL points at it."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def corpora() -> Path:
    """../shared/corpora, or a skip that says why."""
    if not (CORPORA / "reuters21578.tar.gz").is_file():
        pytest.skip(f"real corpora not found at {CORPORA} (set TEXTBENCH_CORPORA to run these tests)")
    return CORPORA


@pytest.fixture
def chromium() -> str:
    """Path of Debian's headless Chromium (installed by `make setup-browser`), or a skip saying so."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium not installed (run `make setup-browser`, i.e. apt-get install chromium)")
    return path


# Flags for a closed network: no background fetches, no first-run work, no sandbox as root.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
