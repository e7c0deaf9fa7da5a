"""Shared fixtures: an isolated project root per test with params built here, the real corpora when
present; the test tiers (`make test` deselects `slow`; browser and corpora tests are slow)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("TEXTBENCH_CORPORA", REPO.parent / "shared" / "corpora"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def base_params() -> dict:
    """The params every test project starts from, built here rather than copied from the shipped
    params.yaml, so editing the product's defaults cannot change a test: the two built-in corpora as
    the mirror serves them, Reuters also multi-label (the real-corpora tests assert measured counts of
    exactly these), small train settings, no family or model entries (the registry's architectures)."""
    return {
        "seed": 42,
        "datasets": {
            "reuters": {
                "kind": "reuters",
                "language": "en",
                "url": "http://kdd.ics.uci.edu/databases/reuters21578/reuters21578.tar.gz",
                "filename": "reuters21578.tar.gz",
                "split": "modapte",
                "label_mode": "single",
                "min_docs_per_class": 10,
                "dev_ratio": 0.1,
                "max_len": 48,
                "encoder": "minilm",
            },
            "reuters_multi": {
                "kind": "reuters",
                "language": "en",
                "filename": "reuters21578.tar.gz",
                "url": "http://kdd.ics.uci.edu/databases/reuters21578/reuters21578.tar.gz",
                "split": "modapte",
                "label_mode": "multi",
                "min_docs_per_class": 1,
                "dev_ratio": 0.1,
                "max_len": 48,
                "encoder": "minilm",
            },
            "thucnews": {
                "kind": "thucnews",
                "language": "zh",
                "url": "http://thuctc.thunlp.org/source/THUCNews.zip",
                "filename": "THUCNews-sample.zip",
                "sha256": "c5c40174a742f88377028ff36a91a8b813c2343bfe5cadc2f708eaf7b4672b0e",
                "categories": ["财经", "房产", "股票", "教育", "科技", "社会", "时政", "体育", "游戏", "娱乐"],
                "per_class": 940,
                "ratios": [0.8, 0.1, 0.1],
                "max_len": 48,
                "encoder": "minilm",
            },
        },
        "tokenize": {"workers": 1},
        "train": {
            "epochs": 2,
            "batch_size": 16,
            "lr": 3.0e-3,
            "warmup_ratio": 0.0,
            "patience": 0,
            "precision": "fp32",
            "threads": 1,
        },
        "benchmark": {"datasets": ["reuters", "thucnews"], "models": ["textcnn", "bert"], "seeds": [42]},
        "orchestration": {"gpus": "none"},
        "report": {"bootstrap": 100},
    }


def write_params(root: Path, params: dict | None = None, name: str = "params.yaml") -> Path:
    """`params` (default: base_params()) as root/<name>."""
    path = root / name
    path.write_text(yaml.safe_dump(base_params() if params is None else params, allow_unicode=True), encoding="utf-8")
    return path


def read_params(root: Path) -> dict:
    """root/params.yaml as a mapping."""
    return yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))


def edit_params(root: Path, fn: Callable[[dict], object], name: str = "params.yaml") -> dict:
    """Read-modify-write of root/params.yaml, the one way a test changes a project's params: `fn` edits
    the mapping in place; it is written back (to root/<name>, e.g. another params file given with -p)
    and returned."""
    raw = read_params(root)
    fn(raw)
    write_params(root, raw, name)
    return raw


@contextlib.contextmanager
def project_root(root: Path, params: dict | None = None) -> Iterator[Path]:
    """`root` as the project under test — the one test project builder: `params` (default base_params())
    as its params.yaml, the current directory and TEXTBENCH_ROOT, no TEXTBENCH_MIRROR; all restored on
    exit. The `project` fixture and the module-scoped trained projects are built with it."""
    write_params(root, params)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("TEXTBENCH_ROOT", str(root))
        mp.delenv("TEXTBENCH_MIRROR", raising=False)
        yield root


def proc_stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, parent pid, ...), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int | str) -> bool:
    """Running: not gone, not a zombie waiting to be reaped."""
    stat = proc_stat(pid)
    return bool(stat) and stat[0] != "Z"


def live_pids() -> list[int]:
    """Every live (not zombie) process."""
    return [int(p.name) for p in Path("/proc").glob("[0-9]*") if alive(p.name)]


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tiers: a test taking the chromium fixture is a browser test; browser and real-corpora tests are
    slow, so `make test` (-m "not slow") leaves them to `make test-all`."""
    for item in items:
        if "chromium" in item.fixturenames:
            item.add_marker(pytest.mark.browser)
        if "corpora" in item.fixturenames:
            item.add_marker(pytest.mark.corpora)
        if item.get_closest_marker("browser") or item.get_closest_marker("corpora"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A throwaway project root (cwd and TEXTBENCH_ROOT) holding base_params() as params.yaml."""
    with project_root(tmp_path) as root:
        yield root


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
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
