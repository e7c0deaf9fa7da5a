"""Explanations on the planted-word task: LIME and integrated gradients find the signal word, IG
gives one score per token and is complete, error_analysis feeds the report hook, CLI output."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import TextbenchError
from pipeline.serve.explain import error_analysis, explain, highlight_html, integrated_gradients
from pipeline.serve.predictor import Predictor
from serve_models import model_dir, predictor

TEXT = "the market report said the goal came late this week"


@pytest.fixture(scope="module")
def predictors() -> dict[str, Predictor]:
    return {name: predictor(name) for name in ("textcnn", "bert")}


@pytest.mark.parametrize("name", ["textcnn", pytest.param("bert", marks=pytest.mark.slow)])
def test_lime_top_token_is_the_planted_word(predictors: dict[str, Predictor], name: str) -> None:
    e = explain(predictors[name], TEXT, method="lime", num_samples=200, seed=0)
    assert e.label == "sports" and e.tokens == TEXT.split()
    assert e.tokens[int(np.argmax(e.scores))] == "goal"
    again = explain(predictors[name], TEXT, method="lime", num_samples=200, seed=0)
    assert again.scores == e.scores  # seeded


@pytest.mark.parametrize("name", ["textcnn", "bert"])
def test_integrated_gradients_one_score_per_token_and_complete(predictors: dict[str, Predictor], name: str) -> None:
    p = predictors[name]
    e = explain(p, TEXT, method="ig", steps=64)
    ids = p.encode([TEXT])[0]
    assert len(e.scores) == len(e.tokens) == len(ids) and e.tokens == p.encoder.tokens(ids)
    assert e.tokens[int(np.argmax(e.scores))] == "goal"
    ids_t, mask = (torch.from_numpy(a) for a in p.pad([ids]))
    with torch.no_grad():  # completeness: attributions sum to p(text) - p(all-[PAD] embeddings)
        base = torch.softmax(p.model(torch.full_like(ids_t, p.pad_id), mask), -1)[0, p.labels.index("sports")]
    assert sum(e.scores) == pytest.approx(e.confidence - float(base), abs=0.05)


@pytest.mark.parametrize("name", ["textcnn", "bert"])
def test_integrated_gradients_match_captum(predictors: dict[str, Predictor], name: str) -> None:
    """Same scores as captum's LayerIntegratedGradients (embedding layer, all-[PAD] baseline, midpoint
    Riemann sum); ours is kept because it is as exact and needs no extra dependency at run time."""
    captum = pytest.importorskip("captum.attr")
    p = predictors[name]
    target = p.labels.index("sports")
    ids_t, mask = (torch.from_numpy(a) for a in p.pad([p.encode([TEXT])[0]]))
    lig = captum.LayerIntegratedGradients(
        lambda ids, m: torch.softmax(p.model(ids, m).float(), -1), p.model.get_input_embeddings()
    )
    ref = (
        lig.attribute(
            ids_t,
            torch.full_like(ids_t, p.pad_id),
            target=target,
            additional_forward_args=(mask,),
            n_steps=32,
            method="riemann_middle",
        )
        .sum(-1)[0]
        .detach()
        .numpy()
    )
    _, ours = integrated_gradients(p, TEXT, target, steps=32)
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_explaining_another_class_and_bad_arguments(predictors: dict[str, Predictor]) -> None:
    e = explain(predictors["textcnn"], TEXT, method="ig", target="finance")
    assert e.label == "finance" and e.scores[e.tokens.index("goal")] < 0
    with pytest.raises(TextbenchError, match="unknown class 'weather'"):
        explain(predictors["textcnn"], TEXT, target="weather")
    with pytest.raises(TextbenchError, match="unknown explanation method"):
        explain(predictors["textcnn"], TEXT, method="shap")


def test_highlight_html_escapes_merges_wordpieces_and_drops_specials() -> None:
    html = highlight_html(["[CLS]", "<b>", "play", "##ing", "[SEP]"], [0.1, 0.5, -1.0, 0.2, 0.3])
    assert "[CLS]" not in html and "&lt;b&gt;" in html and "<b>" not in html
    assert "play</span><span" in html  # ##ing glued to its word
    assert "rgba(220,38,38,0.8)" in html  # the strongest (negative) token is fully red


def test_error_analysis_lists_confident_mistakes_with_highlights(predictors: dict[str, Predictor], tmp_path) -> None:
    rows = {
        "id": ["a", "b", "c", "d"],
        "text": ["goal today", "stock news", "the goal", "a week"],
        "label": ["finance", "finance", "finance", "sports"],
        "pred": ["sports", "finance", "sports", "finance"],
        "confidence": [0.7, 0.99, 0.9, 0.6],
    }
    pq.write_table(pa.table(rows), tmp_path / "predictions.parquet")
    out = error_analysis(model_dir("textcnn"), tmp_path / "predictions.parquet", k=2, predictor=predictors["textcnn"])
    assert [r["id"] for r in out] == ["c", "a"]  # wrong ones, most confident first
    assert all('<span class="tok"' in r["html"] and "goal" in r["html"] for r in out)
    with pytest.raises(TextbenchError, match="no trained model"):
        error_analysis(tmp_path / "models" / "x" / "y", tmp_path / "predictions.parquet", k=2)


def test_cli_prints_tokens_with_scores() -> None:
    result = CliRunner().invoke(app, ["explain", str(model_dir("bert")), "stock prices fell", "--method", "ig"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("finance\t") and lines[0].endswith("(ig)")
    tokens = [line.split("\t")[1] for line in lines[1:]]
    assert tokens == ["[CLS]", "stock", "prices", "fell", "[SEP]"]
