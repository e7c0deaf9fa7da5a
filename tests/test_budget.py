"""Budgets that follow the corpus (`train.batch_tokens`, `train.eval_every: auto`), and RNN heads whose packed sequences make
padding free: a document's output does not depend on how much padding its batch adds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import edit_params
from pipeline.config import TrainConfig, load_config
from pipeline.families import MODELS
from pipeline.models.heads import RNNHead, TransformerHead
from pipeline.train.checkpoint import TrainState
from pipeline.train.data import Split, read_split
from pipeline.train.features import BATCH, pass_batch
from pipeline.train.loop import EVAL_BATCHES, MIN_BATCH, FitInputs, resolve_budget, stop_reason
from pipeline.train.stage import train
from train_fixtures import tiny_bert, write_toy_project

ROOT = Path(__file__).resolve().parents[1]


def _split(lengths: list[int]) -> Split:
    return Split.from_seqs([np.ones(n, dtype=np.int64) for n in lengths])


@pytest.mark.parametrize("max_len", [16, 32, 48])
def test_short_text_corpora_keep_every_default_models_batch(max_len: int) -> None:
    """Reuters and THUCNews cut at 48 tokens: whatever their length distribution under that cut, every
    default model trains with the batch size params.yaml gives it (their published budgets stay)."""
    cfg = load_config(ROOT / "params.yaml")
    rng = np.random.default_rng(0)
    for lengths in (np.full(200, max_len), rng.integers(1, max_len + 1, 200)):
        split = _split(lengths.tolist())
        for model in cfg.benchmark.models:
            tc = cfg.train_for(model)
            assert resolve_budget(tc, split) == tc.model_copy(update={"eval_every": 0}), model


@pytest.mark.parametrize("batch_tokens", [512, 6144, 20000])
@pytest.mark.parametrize("batch_size", [16, 64, 128])
def test_long_documents_take_smaller_batches_within_the_token_cap(batch_tokens: int, batch_size: int) -> None:
    """Over mean lengths from 1 to 4096 tokens the batch never exceeds batch_size, holds at most
    batch_tokens real tokens on average unless at the MIN_BATCH floor (the largest such batch), only
    shrinks as documents grow, and nothing but batch_size changes."""
    tc = TrainConfig(batch_size=batch_size, batch_tokens=batch_tokens)
    previous = batch_size
    for mean in (1, 5, 42, 48, 100, 182, 256, 700, 4096):
        resolved = resolve_budget(tc, _split([mean] * 10))
        b = resolved.batch_size
        assert min(MIN_BATCH, batch_size) <= b <= batch_size
        assert b * mean <= batch_tokens or b == min(MIN_BATCH, batch_size)  # under the cap, or at the floor
        assert (b + 1) * mean > batch_tokens or b == batch_size  # the largest batch under the cap
        assert b <= previous
        previous = b
        assert resolved.model_dump(exclude={"batch_size"}) == tc.model_dump(exclude={"batch_size"})


def test_batch_tokens_zero_keeps_the_given_batch() -> None:
    tc = TrainConfig(batch_size=128, batch_tokens=0)
    assert resolve_budget(tc, _split([4000] * 3)) == tc


def test_the_default_params_shrink_batches_on_long_reviews() -> None:
    """On IMDB-length reviews (mean 182 words under a 256-token cut) every neural default model takes
    more, smaller steps; the linear baselines ignore batch_size (not in their identity)."""
    cfg = load_config(ROOT / "params.yaml")
    split = _split([182] * 100)
    for model in cfg.benchmark.models:
        tc = cfg.train_for(model)
        resolved = resolve_budget(tc, split)
        assert resolved.batch_size * 182 <= tc.batch_tokens and resolved.batch_size < tc.batch_size, model
    assert "batch_size" not in cfg.train_for("tfidf_svm").identity("linear")
    assert set(MODELS) >= set(cfg.benchmark.models)


def _corpus(docs: int, tokens: int) -> Split:
    """`docs` documents holding `tokens` real tokens in all (lengths as even as integers allow)."""
    base, extra = divmod(tokens, docs)
    return _split([base + (i < extra) for i in range(docs)])


# (train documents, real train tokens) of the shipped corpora's splits as params.yaml tokenizes them
# (vocab / subword scheme, cut at max_len 48; the bags' whole-document column adds nothing under 48 tokens)
SHIPPED = {
    "reuters vocab": (5807, 244_329),
    "reuters subword": (5807, 259_697),
    "reuters, every document at the 48-token cut": (5807, 5807 * 48),
    "thucnews vocab": (7520, 140_932),
    "thucnews subword": (7520, 148_901),
}


@pytest.mark.parametrize("corpus", SHIPPED)
def test_eval_every_auto_keeps_one_evaluation_an_epoch_on_the_shipped_corpora(corpus: str) -> None:
    """Reuters and THUCNews train exactly as with `eval_every: 0`: every default model resolves the same
    batch, the same evaluation schedule (each epoch) and nothing else changes, so their table stays."""
    cfg = load_config(ROOT / "params.yaml")
    split = _corpus(*SHIPPED[corpus])
    for model in cfg.benchmark.models:
        tc = cfg.train_for(model)
        assert tc.eval_every == "auto", model
        assert resolve_budget(tc, split) == resolve_budget(tc.model_copy(update={"eval_every": 0}), split), model


@pytest.mark.parametrize("batch_tokens", [2048, 6144])
@pytest.mark.parametrize("docs", [500, 2248, 22500])
def test_eval_every_auto_evaluates_every_bounded_share_of_a_long_epoch(batch_tokens: int, docs: int) -> None:
    """Over mean lengths up to 1,000 tokens: an epoch of at most EVAL_BATCHES x batch_tokens real tokens is
    evaluated once (0); a longer one is split into even intervals of steps holding at most about that many
    tokens (one batch of rounding), never fewer evaluations for more tokens, and only eval_every and the
    batch change. An explicit eval_every is kept as given."""
    tc = TrainConfig(batch_size=64, batch_tokens=batch_tokens, eval_every="auto")
    limit = EVAL_BATCHES * batch_tokens
    previous = 1
    for mean in (5, 20, 48, 100, 182, 256, 1000):
        split = _split([mean] * docs)
        resolved = resolve_budget(tc, split)
        steps = -(-docs // resolved.batch_size)
        tokens = docs * mean
        assert isinstance(resolved.eval_every, int)
        if tokens <= limit:
            assert resolved.eval_every == 0
            evals = 1
        else:
            assert 1 <= resolved.eval_every < steps
            evals = -(-steps // resolved.eval_every)
            assert resolved.eval_every * resolved.batch_size * mean <= limit + resolved.batch_size * mean
        assert evals >= previous
        previous = evals
        assert resolved.model_dump(exclude={"batch_size", "eval_every"}) == tc.model_dump(
            exclude={"batch_size", "eval_every"}
        )
        fixed = tc.model_copy(update={"eval_every": 7})
        assert resolve_budget(fixed, split).eval_every == 7


def test_the_default_params_evaluate_the_imdb_sample_twice_an_epoch() -> None:
    """The 2,500-review sample (2,248 train reviews, 182 tokens on average under the 256 cut, 69 steps
    an epoch at batch 33): dev evaluations every 35 steps, so a 3-evaluation plateau costs 1.5 epochs."""
    cfg = load_config(ROOT / "params.yaml")
    resolved = resolve_budget(cfg.train_for("transformer"), _corpus(2248, 409_921))
    assert (resolved.batch_size, resolved.eval_every) == (33, 35)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("readout", ["last", "attention", "max"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_packed_rnn_gives_each_document_its_unpadded_output(cell: str, readout: str, bidirectional: bool) -> None:
    """A batch of mixed lengths, padded to its longest and then to 3x that, gives every document the
    logits it gets alone with no padding at all: padding is neither read nor computed into the result
    (the backward direction starts at the true last token)."""
    torch.manual_seed(0)
    head = RNNHead(8, 3, cell=cell, hidden=6, layers=2, bidirectional=bidirectional, readout=readout).eval()
    lengths = [1, 7, 3, 12, 5]
    docs = [torch.randn(n, 8) for n in lengths]
    with torch.no_grad():
        alone = torch.cat([head(d.unsqueeze(0), torch.ones(1, len(d), dtype=torch.int64)) for d in docs])
        for width in (max(lengths), 3 * max(lengths)):
            x = torch.full((len(docs), width, 8), 1e3)  # garbage in the padding would show
            mask = torch.zeros(len(docs), width, dtype=torch.int64)
            for i, d in enumerate(docs):
                x[i, : len(d)], mask[i, : len(d)] = d, 1
            torch.testing.assert_close(head(x, mask), alone, rtol=1e-5, atol=1e-6)


def test_a_run_trains_and_records_the_resolved_batch(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The trainer applies the rule: the toy's 96 documents (mean ~9 tokens) with batch_tokens 90 train in
    batches of 10 (10 steps an epoch, not 6 of 16), and config.json records that batch size."""
    write_toy_project(project, tiny_bert(tmp_path_factory.mktemp("bert")))
    settings = dict(batch_size=16, batch_tokens=90, epochs=1, eval_every=0, patience=0)
    edit_params(project, lambda raw: raw["models"]["textcnn"]["train"].update(settings))
    lengths = read_split(project / "data/tokenized/toy/vocab", "train", 4).lengths
    expected = max(MIN_BATCH, int(90 // lengths.mean()))
    m = train(load_config(project / "params.yaml"), "toy", "textcnn")
    cfg = json.loads((project / "models/toy/textcnn/config.json").read_text())
    assert expected < 16 and cfg["train"]["batch_size"] == expected
    assert m["steps"] == -(-96 // expected)


@pytest.mark.parametrize("attn_dropout", [None, 0.0, 0.3])
@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_transformer_attention_dropout_is_set_apart_from_the_residual_dropout(
    attn_dropout: float | None, dropout: float
) -> None:
    """`attn_dropout` reaches every layer's attention and only it (unset: `dropout`, torch's layer as
    before, the same weights and outputs for one seed); in eval mode it changes nothing."""
    x, mask = torch.randn(3, 10, 8), torch.ones(3, 10, dtype=torch.int64)
    mask[0, 6:] = 0
    torch.manual_seed(0)
    head = TransformerHead(8, 2, layers=2, heads=2, ff_dim=16, dropout=dropout, attn_dropout=attn_dropout)
    torch.manual_seed(0)
    plain = TransformerHead(8, 2, layers=2, heads=2, ff_dim=16, dropout=dropout)
    for layer in head.encoder.layers:
        assert layer.self_attn.dropout == (dropout if attn_dropout is None else attn_dropout)
        assert layer.dropout.p == layer.dropout1.p == layer.dropout2.p == dropout
    plain.load_state_dict(head.state_dict())
    head.eval(), plain.eval()
    torch.testing.assert_close(head(x, mask), plain(x, mask))
    if attn_dropout is None:
        head.train(), plain.train()
        torch.manual_seed(1)
        a = head(x, mask)
        torch.manual_seed(1)
        torch.testing.assert_close(a, plain(x, mask))


def test_a_run_evaluates_at_the_resolved_interval(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The trainer applies `eval_every: auto`: the toy's 96 documents with batch_tokens 16 hold more than
    EVAL_BATCHES x 16 tokens, so an epoch of 12 batches of 8 is evaluated every 6 steps, and config.json
    records the resolved interval."""
    write_toy_project(project, tiny_bert(tmp_path_factory.mktemp("bert")))
    edit_params(
        project,
        lambda p: p["models"]["textcnn"]["train"].update(
            batch_size=16, batch_tokens=16, epochs=1, eval_every="auto", patience=0
        ),
    )
    lengths = read_split(project / "data/tokenized/toy/vocab", "train", 4).lengths
    assert int(lengths.sum()) > EVAL_BATCHES * 16 and len(lengths) == 96
    train(load_config(project / "params.yaml"), "toy", "textcnn")
    cfg = json.loads((project / "models/toy/textcnn/config.json").read_text())
    curves = (project / "reports/toy/textcnn/curves.csv").read_text().splitlines()[1:]
    assert (cfg["train"]["batch_size"], cfg["train"]["eval_every"]) == (8, 6)
    assert [int(row.split(",")[0]) for row in curves] == [6, 12]


def test_the_features_pass_takes_fewer_documents_per_pass_only_on_long_documents() -> None:
    """48-token corpora (Reuters, THUCNews) keep BATCH documents per encoder pass, so their cached
    features are computed exactly as before; 256-token reviews take 16; the batch only shrinks as
    documents grow and never drops to 0."""
    assert [pass_batch(_split([n] * 20)) for n in (1, 20, 45, 48, 64)] == [BATCH] * 5
    assert pass_batch(_split([256] * 20)) == 16
    sizes = [pass_batch(_split([n] * 5)) for n in range(1, 5000, 37)]
    assert sizes == sorted(sizes, reverse=True) and min(sizes) >= 1


@pytest.mark.parametrize(("eval_every", "stop_at"), [(0, 70), (50, 160), (10, 40), (5, 30), (2, 30)])
def test_a_plateau_spans_at_least_an_epoch_since_the_best(eval_every: int, stop_at: int) -> None:
    """`patience` evaluations without a gain are a plateau only once they also span an epoch since the
    best: 200 documents in batches of 10 = 20 steps an epoch, the best at step 10, patience 3. Evaluated
    each epoch (0), every 50 or every 10 steps, the 3rd evaluation after the best is an epoch past it
    anyway (10 + 3 x 20, 10 + 3 x 50, 10 + 3 x 10); every 5 or 2 steps it is not (25, 16), and training
    goes on to the first evaluation an epoch after the best (30)."""
    tc = TrainConfig(batch_size=10, patience=3, eval_every=eval_every, epochs=100)
    run = FitInputs(None, _split([4] * 200), _split([4] * 10), ["a", "b"], tc, 0, 0, None, "fp32", Path("."))
    assert run.steps_per_epoch() == 20
    state = TrainState("fp", 2, best_step=10)
    for step in range(10 + (eval_every or 20), 1000, eval_every or 20):
        state.step = step
        state.curves.append({"step": step})
        if stop_reason(run, state, run.total_steps()):
            break
    assert (state.step, stop_reason(run, state, run.total_steps())) == (stop_at, "plateau")
