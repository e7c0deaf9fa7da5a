"""Model zoo: every registered model builds from params.yaml, learns, overfits a batch, masks
padding; arch validation, scheme checks, train-settings precedence, offline loading errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import read_params
from pipeline.config import TrainConfig, load_config
from pipeline.errors import TextbenchError
from pipeline.models.registry import REGISTRY, BuildContext, build_model
from pipeline.train.data import collate
from pipeline.train.loop import make_optimizer
from train_fixtures import LABELS, SPECIALS, WORDS, tiny_bert, toy_docs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest single-threaded, and the CI machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def make(name: str, bert_dir: Path, arch: dict | None = None):
    ctx = BuildContext(
        num_labels=len(LABELS), vocab_size=len(WORDS) + len(SPECIALS), pad_id=0, max_len=16, encoder=str(bert_dir)
    )
    params_arch = load_config(REPO / "params.yaml").arch_for(name) if arch is None else arch
    # these tests train the whole network: the BERT family fine-tuned, not the shipped frozen-features default
    return build_model(
        name, ctx, {**params_arch, **({"freeze_encoder": False} if REGISTRY[name].scheme == "subword" else {})}
    )


def batch(name: str, n: int = 16):
    docs, labels = toy_docs(n, seed=0)
    off = len(SPECIALS)
    seqs = [
        [2] + [w + off for w in d] + [3] if REGISTRY[name].scheme == "subword" else [w + off for w in d] for d in docs
    ]
    import numpy as np

    ids, mask = collate([np.array(s) for s in seqs], pad_id=0)
    return ids, mask, torch.tensor(labels)


NEURAL = sorted(n for n in REGISTRY if REGISTRY[n].family != "linear")  # linear: fitted by sklearn (test_linear.py)


@pytest.mark.parametrize("name", NEURAL)
def test_model_learns_and_overfits_a_batch(name: str, bert_dir: Path) -> None:
    torch.manual_seed(0)
    model, arch = make(name, bert_dir)
    shipped = load_config(REPO / "params.yaml").arch_for(name)
    assert arch == {
        **arch,
        **shipped,
        **({"freeze_encoder": False} if "freeze_encoder" in shipped else {}),
    }  # params reach the builder
    ids, mask, y = batch(name)
    lr = 3e-3 if REGISTRY[name].scheme == "subword" else 1e-2
    opt = make_optimizer(model, TrainConfig(lr=lr))  # the trainer's (lazy Adam for sparse n-gram tables)
    losses = []
    for step in range(100):
        model.train()
        loss = F.cross_entropy(model(ids, mask), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 5 == 4:
            model.eval()
            with torch.no_grad():
                if (model(ids, mask).argmax(1) == y).all():
                    break
    assert losses[-1] < losses[0], f"{name}: loss {losses[0]:.3f} → {losses[-1]:.3f}"
    model.eval()
    with torch.no_grad():
        assert (model(ids, mask).argmax(1) == y).float().mean().item() == 1.0
    assert isinstance(model.get_input_embeddings(), torch.nn.Embedding)


@pytest.mark.parametrize("name", [n for n in NEURAL if n not in ("dpcnn", "bert_dpcnn")])
def test_padding_does_not_change_logits(name: str, bert_dir: Path) -> None:
    """Extra pad positions are masked (DPCNN's pyramid depth depends on length by design)."""
    torch.manual_seed(0)
    model, _ = make(name, bert_dir)
    model.eval()
    ids, mask, _ = batch(name, 8)
    pad = torch.zeros(ids.size(0), 7, dtype=ids.dtype)
    with torch.no_grad():
        a = model(ids, mask)
        b = model(torch.cat([ids, pad], 1), torch.cat([mask, pad], 1))
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_short_inputs_work_for_every_model(bert_dir: Path) -> None:
    """One-token documents (and one empty one) through every model, e.g. DPCNN on 48-token titles and less."""
    import numpy as np

    for name in REGISTRY:
        model, _ = make(name, bert_dir)
        ids, mask = collate([np.array([7]), np.array([], dtype=np.int64)], pad_id=0)
        assert model.eval()(ids, mask).shape == (2, len(LABELS)), name


def test_arch_validation_names_the_key(bert_dir: Path) -> None:
    with pytest.raises(TextbenchError, match=r"models\.textcnn\.arch\.kernel_size: unknown key.*kernel_sizes"):
        make("textcnn", bert_dir, {"kernel_size": [3]})
    with pytest.raises(TextbenchError, match=r"models\.textrnn\.arch\.hidden"):
        make("textrnn", bert_dir, {"hidden": "big"})
    with pytest.raises(TextbenchError, match=r"models\.transformer\.arch: embed_dim 30 must be divisible by heads 4"):
        make("transformer", bert_dir, {"embed_dim": 30, "heads": 4})


@pytest.mark.parametrize(
    "name, arch, key",
    [
        ("textcnn", {"kernel_sizes": []}, "kernel_sizes"),
        ("textcnn", {"kernel_sizes": [3, 0]}, "kernel_sizes.1"),
        ("textcnn", {"embed_dim": 0}, "embed_dim"),
        ("textcnn", {"num_filters": -8}, "num_filters"),
        ("textcnn", {"dropout": 1.0}, "dropout"),
        ("textcnn", {"dropout": -0.1}, "dropout"),
        ("textrnn", {"layers": 0}, "layers"),
        ("textrnn", {"hidden": True}, "hidden"),
        ("fasttext", {"hidden": [256, -1]}, "hidden.1"),
        ("fasttext", {"ngram_buckets": -1}, "ngram_buckets"),
        ("dpcnn", {"region": 0}, "region"),
        ("transformer", {"heads": 0}, "heads"),
        ("transformer", {"ff_dim": 0}, "ff_dim"),
        ("bert_cnn", {"layer_lr_decay": 0.0}, "layer_lr_decay"),
    ],
)
def test_arch_values_that_cannot_build_a_model_name_the_key(bert_dir: Path, name: str, arch: dict, key: str) -> None:
    with pytest.raises(TextbenchError, match=rf"^models\.{name}\.arch\.{re.escape(key)}: "):
        make(name, bert_dir, arch)


def test_every_arch_keyword_is_bounded() -> None:
    """A new keyword must come with its bounds (pipeline/models/bounds.py), a Literal or a bool."""
    from typing import Literal, get_origin

    from pipeline.models import bounds
    from pipeline.models.registry import _kwargs

    allowed = [
        bounds.Size,
        bounds.Sizes,
        bounds.Count,
        bounds.Dropout,
        bounds.Dropout | None,  # unset = another key's value (the Transformer's attn_dropout: dropout)
        bounds.Decay,
        tuple[bounds.Size, ...],
        bool,
        bounds.NgramMax,
        bounds.Costs,
    ]
    for name, e in REGISTRY.items():
        for key, p in {**_kwargs(e.embedder), **_kwargs(e.head)}.items():
            assert p.annotation in allowed or get_origin(p.annotation) is Literal, f"{name}: {key}: {p.annotation}"


def test_unknown_model_and_scheme_mismatch(bert_dir: Path) -> None:
    ctx = BuildContext(num_labels=2, vocab_size=10, pad_id=0, max_len=8, encoder=str(bert_dir))
    with pytest.raises(TextbenchError, match="unknown model 'bret'.*bert, bert_cnn"):
        build_model("bret", ctx, {})
    with pytest.raises(TextbenchError, match="'bert_cnn' needs scheme 'subword'.*got 'vocab'"):
        build_model("bert_cnn", ctx, {}, scheme="vocab")
    with pytest.raises(TextbenchError, match="'textcnn' needs scheme 'vocab'.*got 'subword'"):
        build_model("textcnn", ctx, {}, scheme="subword")


def test_encoder_not_loadable_offline(tmp_path: Path) -> None:
    ctx = BuildContext(num_labels=2, vocab_size=10, pad_id=0, max_len=8, encoder=str(tmp_path / "missing"))
    with pytest.raises(TextbenchError, match="cannot load encoder .*local checkpoint directory"):
        build_model("bert", ctx, {})


def test_pretrained_embeddings_fix_width_and_can_be_frozen(bert_dir: Path) -> None:
    import numpy as np

    vectors = np.random.default_rng(0).normal(size=(45, 24)).astype(np.float32)
    ctx = BuildContext(num_labels=4, vocab_size=45, pad_id=0, max_len=16, embeddings=vectors)
    model, arch = build_model("textcnn", ctx, {"freeze_embeddings": True})
    assert arch["embed_dim"] == 24
    emb = model.get_input_embeddings()
    assert torch.equal(emb.weight.data, torch.from_numpy(vectors)) and not emb.weight.requires_grad


def test_layer_lr_decay_scales_lower_layers(bert_dir: Path) -> None:
    model, _ = make("bert", bert_dir, {"layer_lr_decay": 0.5})
    assert model.lr_scale("head.mlp.1.weight") == 1.0
    assert model.lr_scale("embedder.encoder.encoder.layer.1.attention.self.query.weight") == 0.5
    assert model.lr_scale("embedder.encoder.encoder.layer.0.attention.self.query.weight") == 0.25
    assert model.lr_scale("embedder.encoder.embeddings.word_embeddings.weight") == 0.125


def test_packaged_minilm_builds_offline() -> None:
    ctx = BuildContext(num_labels=3, vocab_size=30522, pad_id=0, max_len=32, encoder="minilm")
    model, _ = build_model("bert_cnn", ctx, {})
    ids = torch.tensor([[101, 3514, 7597, 4125, 102]])
    out = model.eval()(ids, torch.ones_like(ids))
    assert out.shape == (1, 3)
    assert model.embedder.out_dim == 384 and model.embedder.hf_config()["num_hidden_layers"] == 6


def test_train_settings_precedence(project: Path) -> None:
    """TrainConfig defaults < params train < families.<family>.train < models.<name>.train (no registry layer)."""
    raw = read_params(project)
    raw["train"] = {"epochs": 7, "lr": 0.1, "weight_decay": 0.2}
    raw["families"] = {"bert": {"train": {"epochs": 3, "lr": 5e-5}}}
    raw["models"] = {"bert": {"train": {"epochs": 1}}}
    from pipeline.config import config_from_dict

    cfg = config_from_dict(raw)
    bert, textcnn, fasttext = cfg.train_for("bert"), cfg.train_for("textcnn"), cfg.train_for("fasttext")
    assert bert.epochs == 1 and bert.lr == 5e-5 and bert.weight_decay == 0.2  # params model > family > train
    assert textcnn.epochs == 7 and textcnn.lr == 0.1 and textcnn.weight_decay == 0.2  # train: is what trains
    assert fasttext.epochs == 7 and textcnn.grad_clip == 1.0  # TrainConfig default where nobody sets it
    raw["models"] = {"bert": {"train": {"epochs": 0}}}
    with pytest.raises(TextbenchError, match=r"models\.bert\.train\.epochs"):
        config_from_dict(raw).train_for("bert")
    with pytest.raises(TextbenchError, match="unknown model 'nope'"):
        cfg.train_for("nope")


@pytest.mark.slow
def test_bf16_autocast_works_for_every_model(bert_dir: Path) -> None:
    """`precision: auto` picks bf16 on capable CPUs/GPUs: every model must run forward+backward under it."""
    from pipeline.train.loop import autocast

    for name in NEURAL:
        model, _ = make(name, bert_dir)
        ids, mask, y = batch(name, 8)
        with autocast(torch.device("cpu"), "bf16"):
            logits = model(ids, mask)
        assert logits.dtype == torch.float32, name  # the classifier hands fp32 logits to the loss
        loss = F.cross_entropy(logits, y)
        loss.backward()
        assert torch.isfinite(loss) and model.get_input_embeddings().weight.grad is not None, name


def test_fasttext_concat_ngrams_shape_masking_and_buckets() -> None:
    """ngram_mode concat (Chinese-Text-Classification-Pytorch's FastText): [word; bigram; trigram]
    per position from two tables of `ngram_buckets` each; n-grams reaching into padding are zero;
    the buckets depend on the whole n-gram, the current token included."""
    from pipeline.models.classic import WordEmbedder

    torch.manual_seed(0)
    emb = WordEmbedder(50, 0, 16, None, embed_dim=8, ngram_buckets=997, ngram_mode="concat")
    assert emb.out_dim == 24 and emb.bigrams.num_embeddings == emb.trigrams.num_embeddings == 997
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    mask = (ids != 0).long()
    out = emb(ids, mask)
    assert out.shape == (2, 4, 24)
    torch.testing.assert_close(out[..., :8], emb.embedding(ids))  # the word part is the plain embedding
    bi, tri = out[..., 8:16], out[..., 16:]
    assert (bi[:, 0] == 0).all() and (tri[:, :2] == 0).all()  # no token before the first: no n-gram
    assert (bi[0, 1:] != 0).all() and (tri[0, 2:] != 0).all()
    assert (bi[1, 2:] == 0).all() and (tri[1, 2:] == 0).all()  # pad positions: nothing
    torch.testing.assert_close(bi[0, 1], emb.bigrams.weight[(5 * 14918087 + 6) % 997])  # the reference hash + t0
    # buckets change with the current token and with each context token
    b_ids, t_ids, b_ok, t_ok = emb.ngram_ids(
        torch.tensor([[1, 2, 3], [1, 2, 4], [1, 5, 3], [6, 2, 3]]), torch.ones(4, 3, dtype=torch.long)
    )
    assert len({int(b) for b in b_ids[:, 2]}) == 3  # (2,3) (2,4) (5,3); (6,2,3) shares the bigram (2,3)
    assert len({int(t) for t in t_ids[:, 2]}) == 4
    assert b_ok.tolist() == [[False, True, True]] * 4 and t_ok.tolist() == [[False, False, True]] * 4
    # big ids do not overflow int64 into negative buckets
    b_ids, t_ids, _, _ = emb.ngram_ids(
        torch.tensor([[10**6, 10**6 - 1, 10**6 - 2]]), torch.ones(1, 3, dtype=torch.long)
    )
    assert 0 <= int(b_ids.min()) and int(t_ids.max()) < 997
    # a trailing pad changes nothing; gradients reach both n-gram tables
    padded = emb(
        torch.cat([ids, torch.zeros(2, 3, dtype=ids.dtype)], 1),
        torch.cat([mask, torch.zeros(2, 3, dtype=mask.dtype)], 1),
    )
    torch.testing.assert_close(padded[:, :4], out)
    out.sum().backward()
    assert emb.bigrams.weight.grad.abs().sum() > 0 and emb.trigrams.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="concat needs ngram_buckets"):
        WordEmbedder(50, 0, 16, None, embed_dim=8, ngram_mode="concat")


def test_fasttext_sum_mode_keeps_one_shared_table() -> None:
    from pipeline.models.classic import WordEmbedder

    emb = WordEmbedder(50, 0, 16, None, embed_dim=8, ngram_buckets=97, ngram_mode="sum")
    assert emb.out_dim == 8 and emb.ngrams.num_embeddings == 97 and not hasattr(emb, "bigrams")
    ids = torch.tensor([[5, 6, 7]])
    assert emb(ids, torch.ones_like(ids)).shape == (1, 3, 8)
