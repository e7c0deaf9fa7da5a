"""Every answer of the served API equals the sequential answer for the same request, whatever runs at
the same time (issue 23.1): /predict and /explain (ig, lime; `linear` for the TF-IDF baselines)
interleaved from many threads on a real `textbench serve`, for one model of each family — a CNN, a
recurrent net, a linear baseline, a frozen BERT-family encoder and a fine-tuned BERT."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from serve_models import EXTRA, TRAIN, serving, trained_root

pytestmark = pytest.mark.slow

MODELS = [f"reuters/{m}" for m in [*TRAIN, *EXTRA]]
TEXTS = ["the goal said today", "stock market news week", "a city group board", "team goal stock report year"]


def requests() -> list[tuple[str, dict]]:
    """(endpoint, body) of every kind, for every model."""
    out = []
    for model in MODELS:
        out.append(("predict", {"model": model, "texts": TEXTS}))
        for text in TEXTS[:2]:
            out.append(("predict", {"model": model, "text": text}))
            out.append(("explain", {"model": model, "text": text, "method": "ig"}))
            out.append(("explain", {"model": model, "text": text, "method": "lime", "num_samples": 40}))
    return out


def numbers(answer: dict) -> np.ndarray:
    """Every probability and score of an answer, flattened in a fixed order."""
    if "predictions" in answer:
        return np.array([p["probs"][k] for p in answer["predictions"] for k in sorted(p["probs"])])
    return np.array([answer["confidence"], *answer["scores"]])


def test_concurrent_answers_equal_sequential_ones():
    reqs = requests()
    with serving(trained_root(tuple(EXTRA)) / "models") as url, httpx.Client(base_url=url, timeout=300) as client:

        def ask(req: tuple[str, dict]) -> dict:
            r = client.post(f"/{req[0]}", json=req[1])
            assert r.status_code == 200, (req, r.text)
            return r.json()

        reference = [ask(req) for req in reqs]
        # each request 4 times, interleaved so that predicts and IG/LIME of the same model overlap
        jobs = [i for _ in range(4) for i in range(len(reqs))]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: ask(reqs[i]), jobs))
    wrong = []
    for i, answer in zip(jobs, answers):
        ref = reference[i]
        same = (
            answer.get("label") == ref.get("label")
            and answer.get("tokens") == ref.get("tokens")
            and np.allclose(numbers(answer), numbers(ref), rtol=0, atol=1e-6)
        )
        if not same:
            wrong.append(reqs[i])
    assert not wrong, f"{len(wrong)} of {len(jobs)} concurrent answers differ from the sequential one: {wrong[:5]}"
