"""Tiny real models for the predict/serve/explain/export tests, trained once per test session.

A generated two-class task whose only signal is one planted word per class ("goal" → sports,
"stock" → finance) amid shared filler words; the real tokenize stage and the real trainer
(`pipeline.train.train`) turn it into models/<ds>/<model>/ dirs exactly like a user's.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import CHROMIUM_ARGS, REPO, base_params, project_root

SIGNAL = {"sports": "goal", "finance": "stock"}
FILLER = "the a report said today market people new year week city group news team board".split()
TRAIN = {
    "textcnn": {"precision": "fp32", "epochs": 4, "batch_size": 16, "lr": 0.003, "eval_every": 10},
    "bert": {
        "precision": "fp32",
        "epochs": 1,
        "max_steps": 10,
        "batch_size": 16,
        "lr": 0.0002,
        "eval_every": 5,
        "warmup_ratio": 0.0,
    },
}
# more families for the tests that must cover each (tests/test_serve_concurrency.py): `models:` entries
EXTRA = {
    "lstm": {"train": {"precision": "fp32", "epochs": 2, "batch_size": 16, "lr": 0.003, "eval_every": 10}},
    "tfidf_svm": {},
    "bert_cnn": {
        "arch": {"freeze_encoder": True},
        "train": {"precision": "fp32", "epochs": 1, "max_steps": 10, "batch_size": 16, "eval_every": 5},
    },
}


def document(rng: random.Random, label: str) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(4, 12))]
    words.insert(rng.randrange(len(words) + 1), SIGNAL[label])
    return " ".join(words)


SIZES = {"train": 240, "dev": 40, "test": 40}


def write_corpus(root: Path) -> None:
    """Prepared-contract parquet splits + card.json for dataset `reuters` under `root`."""
    rng = random.Random(7)
    out = root / "data" / "prepared" / "reuters"
    out.mkdir(parents=True, exist_ok=True)
    for split, n in SIZES.items():
        labels = [sorted(SIGNAL)[i % 2] for i in range(n)]
        table = pa.table(
            {
                "id": [f"{split}{i:03d}" for i in range(n)],
                "text": [document(rng, label) for label in labels],
                "label": labels,
            }
        )
        pq.write_table(table, out / f"{split}.parquet")
    (out / "card.json").write_text('{"labels": ["finance", "sports"]}', encoding="utf-8")


@functools.cache
def trained_root(extra: tuple[str, ...] = ()) -> Path:
    """A project root holding data/, models/reuters/{textcnn,bert} (plus the `extra` models of EXTRA) and
    reports/ (built once per `extra`: a copy of the plain root with only the extra models trained on top,
    as they would be trained beside the others — each model's run reads only its own params)."""
    from pipeline.config import load_config
    from pipeline.tokenize.stage import tokenize_dataset
    from pipeline.train.stage import train

    root = Path(tempfile.mkdtemp(prefix="textbench-serve-"))
    atexit.register(shutil.rmtree, root, True)
    if extra:
        shutil.copytree(trained_root(), root, dirs_exist_ok=True)
    params = base_params()
    params["datasets"]["reuters"]["max_len"] = 32
    # the fixture's own models: fine-tuned bert, fixed epochs/steps (no plateau stop); one thread, as
    # 2 threads on a loaded 2-core box run ~15x slower
    params["train"] |= {"patience": 0, "time_budget_s": 0, "threads": 1}
    params["models"] = {name: {"train": settings} for name, settings in TRAIN.items()} | {n: EXTRA[n] for n in extra}
    params["benchmark"] = {"datasets": ["reuters"], "models": [*TRAIN, *extra], "seeds": [params["seed"]]}
    with project_root(root, params):
        cfg = load_config(root / "params.yaml")
        if not extra:
            write_corpus(root)
            tokenize_dataset(cfg, "reuters", ("vocab", "subword"))
        for model in extra or TRAIN:
            train(cfg, "reuters", model)
    return root


def model_dir(name: str) -> Path:
    return trained_root() / "models" / "reuters" / name


@functools.cache
def predictor(name: str):
    """A shared fp32 `Predictor` for `model_dir(name)` (loading BERT costs seconds)."""
    from pipeline.serve.predictor import Predictor

    return Predictor.load(model_dir(name))


@contextlib.contextmanager
def serving(models_root: Path) -> Iterator[str]:
    """`textbench serve --models-root models_root` as a real uvicorn process on a free loopback port: its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "serve",
            "--models-root",
            str(models_root),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"server did not start: {proc.stderr.read().decode()[-2000:]}")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@contextlib.contextmanager
def classify_in_page(url: str, chromium: str, model: str, text: str) -> Iterator[tuple[object, list[str]]]:
    """A real Chromium on the served page: `model` selected, `text` classified, the bars drawn; yields
    (the playwright page, the page's JavaScript errors so far)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 760})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector(f"#model option[value='{model}']", state="attached")
        page.select_option("#model", model)
        page.fill("#text", text)
        page.click("#go")
        page.wait_for_selector("#probchart rect.bar")
        try:
            yield page, errors
        finally:
            browser.close()
