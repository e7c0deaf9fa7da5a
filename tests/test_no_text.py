"""One "no text" rule, on tokens (issue 23.2): a text none of whose pieces is a token the model knows
(no pieces at all, or only [UNK]) has nothing to classify — whatever `str.strip()` says. predict leaves
its row unlabelled with needs_review, the API answers 422, explain refuses it (no LIME traceback), and
prepare drops documents made only of whitespace, control and format characters, counting them in
card.json. The rule is `EncodedBatch.classifiable` (pipeline/tokenize/encoder.py), used everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from pipeline.data.prepare import prepare
from pipeline.errors import TextbenchError
from pipeline.serve.api import create_app
from pipeline.serve.explain import explain
from pipeline.serve.predict import predict_file
from serve_models import predictor, trained_root
from test_data_local import card, make_config

# no pieces for any tokenizer: not blank by str.strip(), yet nothing in them
NO_PIECES = ["\u200b\u200b", "\x00\x01\x02", "\u00ad", "\ufeff \u200d", "\u2060\u200c\u200e", "\x7f \x1b"]
# only [UNK] for these models: characters and words outside both vocabularies
ONLY_UNK = ["\U0001f642\U0001f643", "\U0001f4c8 \U0001f3c6"]
VOCAB_ONLY_UNK = ["!!! ???", "zyxwv qqqq"]  # words the textcnn vocabulary never saw (WordPiece knows the pieces)
CASES = {"textcnn": NO_PIECES + ONLY_UNK + VOCAB_ONLY_UNK, "bert": NO_PIECES + ONLY_UNK}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(trained_root() / "models"), raise_server_exceptions=False)


@pytest.mark.parametrize("name", list(CASES))
def test_the_rule_sees_nothing_in_them_and_something_in_text(name):
    _, known = predictor(name).encode_known([*CASES[name], "goal", "stock \u200b rose", None])
    assert known.tolist() == [False] * len(CASES[name]) + [True, True, False]


@pytest.mark.parametrize("name", list(CASES))
def test_predict_leaves_them_unlabelled(tmp_path, name):
    texts = ["goal", *CASES[name], "stock"]
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), tmp_path / "in.parquet")
    out, _ = predict_file(predictor(name), str(tmp_path / "in.parquet"), str(tmp_path / "out.jsonl"))
    rows = [json.loads(line) for line in Path(out).read_text(encoding="utf-8").splitlines()]
    assert [r["label"] for r in rows] == ["sports", *[None] * len(CASES[name]), "finance"]
    assert [r["needs_review"] for r in rows] == [False, *[True] * len(CASES[name]), False]


@pytest.mark.parametrize("name", list(CASES))
def test_the_api_answers_422_and_explain_refuses(client, name):
    bad = []
    for text in CASES[name]:
        for endpoint, body in [
            ("predict", {"text": text}),
            ("predict", {"texts": ["goal", text]}),
            ("explain", {"text": text, "method": "ig"}),
            ("explain", {"text": text, "method": "lime", "num_samples": 20}),
        ]:
            r = client.post(f"/{endpoint}", json={"model": f"reuters/{name}", **body})
            if r.status_code != 422 or "nothing to classify" not in r.json()["detail"]:
                bad.append(f"/{endpoint} {body}: {r.status_code} {r.text[:160]}")
        for method in ("ig", "lime"):
            with pytest.raises(TextbenchError, match="nothing to explain"):
                explain(predictor(name), text, method=method, num_samples=20)
    assert not bad, "\n".join(bad)


def test_prepare_drops_and_counts_documents_without_content(project):
    rows = [{"text": f"document number {i}", "label": "pos" if i % 2 else "neg"} for i in range(40)]
    rows += [{"text": t, "label": "pos"} for t in NO_PIECES]
    pd.DataFrame(rows).to_parquet(project / "corpus.parquet")
    prepare(make_config(project, path="corpus.parquet"), "mine")
    c = card(project)
    assert c["empty_docs_dropped"] == len(NO_PIECES) and sum(c["totals"].values()) == 40


def test_error_analysis_shows_an_only_unk_mistake_unhighlighted(tmp_path):
    """The trainer scores every test document; the report's error analysis must not stop on one that
    explain refuses (the rule came after training): it shows that text without attributions."""
    from pipeline.serve.explain import error_analysis
    from serve_models import model_dir

    rows = {"id": ["a", "b"], "text": ["zyxwv qqqq", "the goal"], "label": ["finance"] * 2, "pred": ["sports"] * 2}
    pq.write_table(pa.table(rows | {"confidence": [0.9, 0.8]}), tmp_path / "predictions.parquet")
    out = error_analysis(model_dir("textcnn"), tmp_path / "predictions.parquet", predictor=predictor("textcnn"))
    assert [r["html"] for r in out][0] == "zyxwv qqqq" and '<span class="tok"' in out[1]["html"]
