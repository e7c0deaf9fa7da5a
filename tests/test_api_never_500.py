"""The API never answers 500 for what a client sends (issue 23.6): numbers JSON cannot write back
(`1e99999` parses to inf, `NaN`, `Infinity`) in any field are a 422 like any other wrong type; and
`GET /models` checks the invariants `/predict` relies on (tokenizer/meta.json agrees with config.json),
so a model it lists as healthy does load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.serve.api import create_app
from pipeline.serve.predictor import SHARED_KEYS
from serve_models import trained_root

NON_FINITE = ["1e99999", "-1e99999", "NaN", "Infinity", "-Infinity"]
FIELDS = {  # endpoint → body templates with one non-JSON number in each field a client sends
    "predict": ['{"text": %s}', '{"texts": [%s]}', '{"texts": ["goal", %s]}', '{"text": "goal", "model": %s}'],
    "explain": [
        '{"text": %s}',
        '{"text": "goal", "num_samples": %s}',
        '{"text": "goal", "target": %s}',
        '{"text": "goal", "method": %s}',
        '{"text": "goal", "model": %s}',
    ],
}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(trained_root() / "models"), raise_server_exceptions=False)


@pytest.mark.parametrize("number", NON_FINITE)
def test_non_finite_numbers_are_a_422(client: TestClient, number: str) -> None:
    bad = []
    for endpoint, templates in FIELDS.items():
        for template in templates:
            body = template % number
            r = client.post(f"/{endpoint}", content=body, headers={"content-type": "application/json"})
            if r.status_code != 422 or not isinstance(r.json().get("detail"), str):
                bad.append(f"/{endpoint} {body}: {r.status_code} {r.text[:200]}")
    assert not bad, "\n".join(bad)


def changed(meta: dict, key: str) -> object:
    """Another valid-looking value of meta.json's `key`."""
    value = meta[key]
    return {
        "scheme": "subword" if value == "vocab" else "vocab",
        "labels": list(reversed(value)) if isinstance(value, list) else value,
        "label_mode": "multi" if value == "single" else "single",
    }.get(key, value + 1 if isinstance(value, int) else value)


@pytest.mark.parametrize("key", SHARED_KEYS)
def test_models_lists_a_model_whose_meta_disagrees_as_broken(tmp_path: Path, key: str) -> None:
    root = tmp_path / "models" / "reuters"
    for name in ("good", "odd"):
        shutil.copytree(trained_root() / "models" / "reuters" / "textcnn", root / name)
    meta_path = root / "odd" / "tokenizer" / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta_path.write_text(json.dumps(meta | {key: changed(meta, key)}), encoding="utf-8")
    c = TestClient(create_app(tmp_path / "models"), raise_server_exceptions=False)

    models = {m["name"]: m for m in c.get("/models").json()}
    assert models["reuters/good"]["error"] is None
    assert models["reuters/odd"]["error"], f"{key}: listed healthy"
    r = c.post("/predict", json={"model": "reuters/odd", "text": "goal"})
    assert r.status_code == 500 and r.json()["detail"] == models["reuters/odd"]["error"]  # the same reason
    assert c.post("/predict", json={"model": "reuters/good", "text": "goal"}).status_code == 200
