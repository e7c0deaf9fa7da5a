"""`textbench serve`: the API answers valid and invalid requests (TestClient), a real uvicorn survives
a loopback load test with zero server errors, and a real Chromium uses the page end to end."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import REPO
from pipeline.serve.api import Limits, create_app
from serve_models import classify_in_page, serving, trained_root

ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = create_app(trained_root() / "models", Limits(max_body_bytes=4000, max_texts=4, max_chars=200))
    return TestClient(app, raise_server_exceptions=False)


def test_models_health_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "models": 2}
    models = {m["name"]: m for m in client.get("/models").json()}
    assert set(models) == {"reuters/bert", "reuters/textcnn"}
    assert models["reuters/textcnn"]["labels"] == ["finance", "sports"]
    assert models["reuters/bert"]["metrics"]["accuracy"] == pytest.approx(1.0)
    spec = client.get("/openapi.json").json()
    assert {"/predict", "/explain", "/models", "/healthz"} <= set(spec["paths"])
    assert "textbench" in client.get("/").text and "<script src" not in client.get("/").text


def test_predict_single_and_batch(client: TestClient) -> None:
    one = client.post("/predict", json={"model": "reuters/bert", "text": "the goal was late"}).json()
    assert one["model"] == "reuters/bert" and one["predictions"][0]["label"] == "sports"
    many = client.post("/predict", json={"model": "reuters/textcnn", "texts": ["stock fell", "goal", "stock up"]})
    preds = many.json()["predictions"]
    assert [p["label"] for p in preds] == ["finance", "sports", "finance"]
    for p in preds:
        assert set(p["probs"]) == {"finance", "sports"} and sum(p["probs"].values()) == pytest.approx(1.0, abs=1e-5)
        assert p["confidence"] == pytest.approx(max(p["probs"].values()))


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b'\xff\xfe{"text": "goal"}', 400, "not valid UTF-8"),
        (b'{"text": ', 422, "not valid JSON"),
        (b"[" + b'"goal",' * 1000 + b"]", 413, "exceeds 4000 bytes"),
        (b'{"model": "reuters/bert", "texts": []}', 422, "empty list"),
        (b'{"model": "reuters/bert", "text": "   "}', 422, "empty text"),
        (b'{"model": "reuters/bert", "texts": ["a", "b", "c", "d", "e"]}', 413, "at most 4 per request"),
        (b'{"model": "reuters/bert", "text": "' + b"x" * 300 + b'"}', 413, "at most 200"),
        (b'{"model": "nope/none", "text": "goal"}', 404, "unknown model 'nope/none'"),
        (b'{"text": "goal"}', 422, "several models are served"),
        (b'{"model": "reuters/bert", "text": "a", "texts": ["b"]}', 422, "exactly one of"),
        (b'{"model": "reuters/bert", "text": 5}', 422, "text: Input should be a valid string"),
        (b'{"model": "reuters/bert", "txt": "goal"}', 422, "txt: Extra inputs are not permitted"),
    ],
)
def test_bad_requests_get_clear_4xx_json_and_the_server_keeps_serving(
    client: TestClient, body: bytes, status: int, message: str
) -> None:
    r = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status and message in r.json()["detail"]
    assert client.post("/predict", json={"model": "reuters/textcnn", "text": "goal"}).status_code == 200


def test_explain_endpoint(client: TestClient) -> None:
    r = client.post("/explain", json={"model": "reuters/bert", "text": "the stock rose", "method": "ig"}).json()
    assert r["label"] == "finance" and len(r["tokens"]) == len(r["scores"]) == 5
    assert r["tokens"][int(np.argmax(r["scores"]))] == "stock" and "stock</span>" in r["html"]
    lime = client.post(
        "/explain", json={"model": "reuters/textcnn", "text": "a goal today", "method": "lime", "num_samples": 100}
    ).json()
    assert lime["method"] == "lime" and lime["tokens"] == ["a", "goal", "today"]
    bad = client.post("/explain", json={"model": "reuters/bert", "text": "x", "target": "weather"})
    assert bad.status_code == 422 and "unknown class" in bad.json()["detail"]


def test_a_broken_model_dir_is_listed_with_its_error_and_answers_json(tmp_path: Path) -> None:
    """One unreadable config.json must not take /models down, and a model whose labels disagree with its
    num_labels answers a JSON `detail` (not a plain-text 500); the good models keep serving."""
    import json
    import shutil

    for name in ("good", "broken", "mislabelled"):
        shutil.copytree(trained_root() / "models" / "reuters" / "textcnn", tmp_path / "models" / "reuters" / name)
    (tmp_path / "models" / "reuters" / "broken" / "config.json").write_text("{truncated", encoding="utf-8")
    cfg_path = tmp_path / "models" / "reuters" / "mislabelled" / "config.json"
    cfg_path.write_text(json.dumps(json.loads(cfg_path.read_text()) | {"labels": ["finance", "sports", "weather"]}))
    c = TestClient(create_app(tmp_path / "models"), raise_server_exceptions=False)

    listed = c.get("/models")
    assert listed.status_code == 200
    models = {m["name"]: m for m in listed.json()}
    assert models["reuters/good"]["labels"] == ["finance", "sports"] and models["reuters/good"]["error"] is None
    assert "broken/config.json: not valid JSON" in models["reuters/broken"]["error"]
    assert models["reuters/broken"]["labels"] is None
    assert "labels: 3 classes, but num_labels is 2" in models["reuters/mislabelled"]["error"]
    for name, message in (("broken", "not valid JSON"), ("mislabelled", "3 classes, but num_labels is 2")):
        r = c.post("/predict", json={"model": f"reuters/{name}", "text": "goal"})
        assert r.status_code == 500 and r.headers["content-type"] == "application/json"
        assert message in r.json()["detail"] and "retrain it" in r.json()["detail"]
    assert (
        c.post("/predict", json={"model": "reuters/good", "text": "goal"}).json()["predictions"][0]["label"] == "sports"
    )


def test_the_page_opens_on_the_reports_best_model(tmp_path: Path) -> None:
    """`default` in /models (which the page selects first) is the report's best run of the first dataset by
    name: highest macro-F1, then accuracy, then name, skipping runs that cannot serve, have no test metrics or
    are not comparable; never simply the first model in name order."""
    import json
    import shutil

    src = trained_root()
    metrics = json.loads((src / "reports" / "reuters" / "textcnn" / "metrics.json").read_text())
    runs = {  # name → (macro-F1, accuracy, extra metrics.json keys); None: no metrics.json
        "reuters/bert": (0.70, 0.90, {}),
        "reuters/dpcnn": (0.80, 0.85, {}),
        "reuters/fasttext": (0.80, 0.91, {}),  # ties dpcnn on macro-F1, wins on accuracy
        "reuters/lstm": (0.99, 0.99, {"not_comparable": "encoder reads 60% of tokens as [UNK]"}),
        "reuters/rnn": None,
        "reuters/zbroken": (0.99, 0.99, {}),
        "thucnews/textcnn": (0.95, 0.95, {}),  # a later dataset
    }
    for name, run in runs.items():
        shutil.copytree(src / "models" / "reuters" / "textcnn", tmp_path / "models" / name)
        if run is not None:
            (tmp_path / "reports" / name).mkdir(parents=True)
            m = metrics | {"macro_f1": run[0], "accuracy": run[1]} | run[2]
            (tmp_path / "reports" / name / "metrics.json").write_text(json.dumps(m))
    (tmp_path / "models" / "reuters" / "zbroken" / "config.json").write_text("{truncated", encoding="utf-8")
    c = TestClient(create_app(tmp_path / "models"))
    listed = c.get("/models").json()
    assert [m["name"] for m in listed if m["default"]] == ["reuters/fasttext"]
    assert {m["name"]: m["comparable"] for m in listed}["reuters/lstm"] is False
    assert "m.default" in c.get("/").text  # the page selects it
    for name in ("reuters/fasttext", "reuters/dpcnn", "reuters/bert"):  # each in turn the best one left
        shutil.rmtree(tmp_path / "models" / name)
        left = [m["name"] for m in c.get("/models").json() if m["default"]]
        assert left == (
            ["reuters/dpcnn"]
            if name.endswith("fasttext")
            else ["reuters/bert"]
            if name.endswith("dpcnn")
            else ["thucnews/textcnn"]
        )


def test_an_unexpected_failure_is_still_a_json_detail(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.serve.predictor import Predictor

    monkeypatch.setattr(Predictor, "rows", lambda self, probs: 1 / 0)  # what /predict calls after the forward
    r = client.post("/predict", json={"model": "reuters/textcnn", "text": "goal"})
    assert r.status_code == 500 and r.json()["detail"] == "internal error: ZeroDivisionError: division by zero"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """`textbench serve` as a real uvicorn process on a free loopback port."""
    with serving(trained_root() / "models") as url:
        yield url


@pytest.mark.slow
def test_load_2000_requests_from_8_clients_without_server_errors(server: str) -> None:
    """Every 10th request is malformed: those must get 4xx, all others 200, none 5xx."""

    def client_run(worker: int) -> list[tuple[int, float, bool]]:
        out = []
        with httpx.Client(base_url=server, timeout=30) as c:
            for i in range(250):
                bad = i % 10 == 0
                body = (
                    {"model": "reuters/textcnn", "texts": []}
                    if bad
                    else {"model": "reuters/textcnn", "texts": [f"goal number {worker} {i}", "stock report"]}
                )
                start = time.perf_counter()
                status = c.post("/predict", json=body).status_code
                out.append((status, time.perf_counter() - start, bad))
        return out

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = [r for rs in pool.map(client_run, range(8)) for r in rs]
    elapsed = time.perf_counter() - start
    statuses = [s for s, _, _ in results]
    assert len(results) == 2000 and not [s for s in statuses if s >= 500]
    assert all((s == 422) if bad else (s == 200) for s, _, bad in results)
    lat = np.array([t for _, t, _ in results]) * 1000
    print(
        f"\nload: 2000 requests, 8 clients, {elapsed:.1f}s ({2000 / elapsed:.0f} req/s), "
        f"p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms"
    )
    assert elapsed < 120


def test_page_in_a_real_browser(server: str, chromium: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    text = "Late in the second half the striker scored the winning goal for the home team."
    with classify_in_page(server, chromium, "reuters/bert", text) as (page, errors):
        page.wait_for_selector("#highlight .tok")
        assert page.inner_text("#verdict").startswith("sports")
        assert page.locator("#probchart rect.bar").count() == 2
        tokens = page.locator("#highlight .tok").all_inner_texts()
        assert "goal" in tokens and "[CLS]" not in tokens
        page.screenshot(path=str(ARTIFACTS / "serve-page.png"), full_page=True)
        page.fill("#text", "")
        page.click("#go")
        assert "Paste some text" in page.inner_text("#error")
        (best,) = [m["name"] for m in httpx.get(f"{server}/models").json() if m["default"]]
        page.reload()
        page.wait_for_function("document.getElementById('model').options.length > 0")
        assert page.input_value("#model") == best  # the page opens on the report's best model
    assert not errors
