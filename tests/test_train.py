"""Trainer on generated tokenized fixtures: the CLI writes the model and report dirs, resume after a crash
ends with the same metrics as an uninterrupted run, and bad inputs leave earlier results untouched."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from conftest import edit_params
from pipeline import paths
from pipeline.artifacts import SCORES
from pipeline.cli import app
from pipeline.config import load_config
from pipeline.errors import TextbenchError
from pipeline.evaluate import classification_metrics, temper
from pipeline.models.load import load_trained
from pipeline.train import loop
from pipeline.train.stage import train
from train_fixtures import LABELS, tiny_bert, write_toy_project

METRIC_KEYS = {
    "dataset",
    "model",
    "seed",
    *SCORES,
    "per_class",
    "confusion_matrix",
    "labels",
    "params",
    "train_time_s",
    "train_samples_per_s",
    "infer_samples_per_s",
    "peak_memory_mb",
    "best_step",
    "fingerprint",
}


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def toy(project: Path, bert_dir: Path) -> Path:
    write_toy_project(project, bert_dir)
    return project


@pytest.mark.parametrize("model", ["textcnn", "bert_cnn"])
def test_cli_train_writes_every_model_and_report_file(toy: Path, model: str) -> None:
    result = CliRunner().invoke(app, ["train", "-d", "toy", "-m", model])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output
    mdir, rdir = toy / "models" / "toy" / model, toy / "reports" / "toy" / model
    cfg = json.loads((mdir / "config.json").read_text())
    assert {"model", "dataset", "scheme", "arch", "train", "labels", "num_labels", "seed", "fingerprint"} <= set(cfg)
    assert cfg["labels"] == LABELS and cfg["num_labels"] == 4 and cfg["seed"] == 42
    assert (cfg["encoder_config"] is not None) == model.startswith("bert")
    assert {"meta.json"} <= {p.name for p in (mdir / "tokenizer").iterdir()}
    assert (mdir / "tokenizer" / ("tokenizer.json" if model.startswith("bert") else "vocab.json")).is_file()
    assert {p.name for p in mdir.iterdir()} == {"config.json", "model.safetensors", "tokenizer"}  # no resume state
    # no partial/temp dirs or locks under models/; the resume state is gone, the job lock kept apart
    assert [p.name for p in (toy / "models" / "toy").glob(".*")] == []
    assert not paths.partial_dir(mdir).exists() and paths.job_lock(mdir).is_file()
    metrics = json.loads((rdir / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics) and metrics["accuracy"] > 0.5
    assert set(metrics["per_class"]) == set(LABELS) and len(metrics["confusion_matrix"]) == 4
    preds = pq.read_table(rdir / "predictions.parquet")
    assert preds.column_names == ["id", "text", "label", "pred", "confidence", "probs"]
    assert str(preds.schema.field("probs").type) == "list<element: float>" and preds.num_rows == 24
    assert preds.column("text")[0].as_py().startswith("w")
    acc = np.mean(np.array(preds.column("label").to_pylist()) == np.array(preds.column("pred").to_pylist()))
    assert acc == pytest.approx(metrics["accuracy"])
    curves = (rdir / "curves.csv").read_text().splitlines()
    assert curves[0] == "step,train_loss,dev_loss,dev_accuracy,dev_macro_f1" and len(curves) >= 3
    model_, cfg2 = load_trained(mdir)  # rebuilt offline from config.json; same test predictions
    assert not model_.training and cfg2.as_dict() == cfg


@pytest.mark.slow
@pytest.mark.parametrize("model", ["textrnn_att", "fasttext"])  # fasttext: AdamW + SparseAdam in one state
def test_resume_after_crash_matches_uninterrupted_run(toy: Path, monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    cfg = load_config(toy / "params.yaml")
    full = train(cfg, "toy", model, report_dir=toy / "full")

    calls = {"n": 0}
    real_evaluate = loop._evaluate

    def crash_after_two(*args, **kwargs):
        if calls["n"] == 2:
            raise RuntimeError("killed")
        calls["n"] += 1
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(loop, "_evaluate", crash_after_two)
    with pytest.raises(RuntimeError, match="killed"):
        train(cfg, "toy", model, model_dir=toy / "m2", report_dir=toy / "r2")
    assert not (toy / "m2").exists() and not (toy / "r2").exists()  # nothing half-written
    state = json.loads((paths.partial_dir(toy / "m2") / "last" / "state.json").read_text())["state"]
    assert state["step"] == 8  # crashed at the third evaluation (eval_every 4)
    monkeypatch.setattr(loop, "_evaluate", real_evaluate)
    resumed = train(cfg, "toy", model, resume=True, model_dir=toy / "m2", report_dir=toy / "r2")
    for key in ("accuracy", "macro_f1", "weighted_f1", "per_class", "confusion_matrix", "best_step", "fingerprint"):
        assert resumed[key] == full[key], key
    assert not paths.partial_dir(toy / "m2").exists()  # the finished run leaves no resume state
    assert (toy / "full" / "curves.csv").read_text() == (toy / "r2" / "curves.csv").read_text()
    a = pq.read_table(toy / "full" / "predictions.parquet").column("probs").to_pylist()
    b = pq.read_table(toy / "r2" / "predictions.parquet").column("probs").to_pylist()
    assert a == b


def _small_fasttext() -> tuple[torch.nn.Module, loop.Optimizer]:
    """fastText with 64-bucket sparse n-gram tables (seeded, eval mode) and the trainer's optimizer."""
    from pipeline.config import TrainConfig
    from pipeline.models.registry import BuildContext, build_model

    torch.manual_seed(0)
    net, _ = build_model(
        "fasttext", BuildContext(num_labels=2, vocab_size=50, pad_id=0, max_len=16), {"ngram_buckets": 64}
    )
    return net.eval(), loop.make_optimizer(net, TrainConfig(lr=1e-2))


def test_sparse_ngram_tables_step_only_the_rows_a_batch_touched_and_clip_like_dense() -> None:
    """fastText's n-gram tables have sparse gradients: lazy Adam moves only the rows of the batch's
    n-grams (a 200k-bucket step costs what a 20k one does), AdamW the rest; clipping a sparse gradient
    scales it as clipping its dense equal does."""
    net, opt = _small_fasttext()  # eval mode, no dropout: the rows a batch touches are exactly its n-grams
    assert isinstance(opt, loop.SparseAwareAdamW) and len(opt.param_groups) == 3  # decay, no decay, n-gram tables
    ids, mask = torch.tensor([[3, 4, 5, 6]]), torch.ones(1, 4, dtype=torch.long)
    bi, tri, _, _ = net.embedder.ngram_ids(ids, mask)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    F.cross_entropy(net(ids, mask), torch.tensor([1])).backward()
    dense_grads = {n: p.grad.to_dense().clone() for n, p in net.named_parameters()}
    loop.clip_grad_norm(list(net.parameters()), 1e-3)
    scale = 1e-3 / (torch.linalg.vector_norm(torch.stack([g.norm() for g in dense_grads.values()])) + 1e-6)
    for n, p in net.named_parameters():
        assert torch.allclose(p.grad.to_dense(), dense_grads[n] * scale, atol=1e-9), n
    opt.step()
    after = net.state_dict()
    for table, used in (("bigrams", bi[0, 1:]), ("trigrams", tri[0, 2:])):
        moved = (after[f"embedder.{table}.weight"] != before[f"embedder.{table}.weight"]).any(1).nonzero().flatten()
        assert sorted(moved.tolist()) == sorted(set(used.tolist())), table
    assert not torch.equal(after["head.mlp.1.weight"], before["head.mlp.1.weight"])


def test_a_lazy_adam_checkpoint_round_trips_and_a_corrupt_one_is_one_clear_error(tmp_path: Path) -> None:
    """`last/` of a model with sparse tables: SparseAdam's int step counts go to state.json beside the
    tensors and come back; a state.json whose counts are not numbers is a corrupt checkpoint, not a traceback."""

    def step(net: torch.nn.Module, opt: loop.Optimizer) -> None:
        F.cross_entropy(
            net(torch.tensor([[3, 4, 5, 6]]), torch.ones(1, 4, dtype=torch.long)), torch.tensor([1])
        ).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    net, opt = _small_fasttext()
    step(net, opt)
    state = loop.checkpoint.TrainState(fingerprint="f", num_labels=2, step=1)
    loop.checkpoint.save_last(tmp_path / "last", net, {}, opt, state)
    assert set(json.loads((tmp_path / "last" / "state.json").read_text())["scalars"].values()) == {1}
    net2, opt2 = _small_fasttext()
    loop.checkpoint.load_last(tmp_path / "last", net2, opt2, state)
    step(net, opt)
    step(net2, opt2)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), net2.state_dict().values()))
    raw = json.loads((tmp_path / "last" / "state.json").read_text())
    raw["scalars"] = {k: "many" for k in raw["scalars"]}
    (tmp_path / "last" / "state.json").write_text(json.dumps(raw))
    with pytest.raises(TextbenchError, match="corrupt checkpoint"):
        loop.checkpoint.load_last(tmp_path / "last", *_small_fasttext(), state)


def test_an_expensive_resume_state_is_written_at_most_a_tenth_of_the_time(monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[int] = []
    monkeypatch.setattr(loop.checkpoint, "save_last", lambda path, model, best, opt, state: writes.append(state.step))
    saver = loop._Saver(Path("unused"))
    state = loop.checkpoint.TrainState(fingerprint="f", num_labels=2)
    for step in (1, 2):  # cheap writes (under CHEAP_WRITE_S): at every evaluation
        state.step = step
        saver.save(None, {}, None, state, force=False)
    saver.cost = 60.0  # a write now takes a minute: the next is due 10 minutes later, or when training stops
    for step, force in ((3, False), (4, False), (5, True)):
        state.step = step
        saver.save(None, {}, None, state, force=force)
    assert writes == [1, 2, 5]
    saver.cost = 60.0
    state.step = 6
    saver.save(None, {}, None, state, force=False)
    saver.written_at -= 600.0  # ten minutes of training since the write
    state.step = 7
    saver.save(None, {}, None, state, force=False)
    assert writes == [1, 2, 5, 7]


@pytest.mark.parametrize("name, hf", [("linear", "linear"), ("cosine", "cosine"), ("constant", "constant_with_warmup")])
def test_lr_schedule_is_the_transformers_scheduler_as_a_function_of_the_step(name: str, hf: str) -> None:
    """The factor at step k is the lr a `transformers.get_scheduler` run gives its k-th optimizer step,
    recomputed from the step alone (what a resumed run relies on)."""
    from transformers import get_scheduler

    from pipeline.config import TrainConfig

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched, lrs = get_scheduler(hf, opt, num_warmup_steps=3, num_training_steps=12), []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    factor = loop.lr_schedule(12, TrainConfig(scheduler=name, warmup_ratio=0.25))
    assert [factor(k) for k in range(12)] == pytest.approx(lrs)
    assert [factor(k) for k in (2, 3)] == pytest.approx([2 / 3, 1.0])  # linear warmup over 3 steps to the base lr


@pytest.mark.slow
def test_bad_inputs_leave_earlier_results_untouched(toy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(toy / "params.yaml")
    train(cfg, "toy", "fasttext")
    mdir, rdir = toy / "models" / "toy" / "fasttext", toy / "reports" / "toy" / "fasttext"
    before = (rdir / "metrics.json").read_bytes(), (mdir / "model.safetensors").read_bytes()

    with monkeypatch.context() as m, pytest.raises(TextbenchError, match="training diverged: loss is nan at step 0"):
        m.setattr(loop.F, "cross_entropy", lambda *a, **k: torch.tensor(float("nan"), requires_grad=True))
        train(cfg, "toy", "fasttext")
    assert ((rdir / "metrics.json").read_bytes(), (mdir / "model.safetensors").read_bytes()) == before

    real_evaluate, calls = loop._evaluate, []

    def crash_at_second_evaluation(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real_evaluate(*args, **kwargs)

    with monkeypatch.context() as m, pytest.raises(RuntimeError, match="killed"):  # leaves a resumable state
        m.setattr(loop, "_evaluate", crash_at_second_evaluation)
        train(cfg, "toy", "fasttext")
    state_path = paths.partial_dir(mdir) / "last" / "state.json"
    assert state_path.is_relative_to(paths.state_dir()) and not list(mdir.parent.glob(".*"))  # apart from models/
    state = json.loads(state_path.read_text())
    state["state"]["num_labels"] = 3
    state_path.write_text(json.dumps(state))
    with pytest.raises(TextbenchError, match="checkpoint has 3 labels but the data has 4"):
        train(cfg, "toy", "fasttext", resume=True)

    result = CliRunner().invoke(app, ["train", "-d", "toy", "-m", "fastext"])
    assert result.exit_code != 0 and "fasttext" in str(result.exception)

    (mdir / "model.safetensors").write_bytes(before[1][: len(before[1]) // 2])  # truncated
    with pytest.raises(TextbenchError, match="model.safetensors: corrupt or unreadable checkpoint"):
        load_trained(mdir)
    assert (rdir / "metrics.json").read_bytes() == before[0]


def test_metrics_fix_labels_and_zero_division() -> None:
    m = classification_metrics([0, 0, 1], [0, 1, 1], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)


@pytest.mark.slow
def test_peak_memory_on_cpu_catches_a_peak_already_freed() -> None:
    """The kernel's ru_maxrss: 512 MB touched and freed before anyone looks still count (a fresh process)."""
    code = (
        "import numpy as np, torch\nfrom pipeline.evaluate import PeakMemory\n"
        "memory = PeakMemory(torch.device('cpu'))\nblock = np.ones(512 * 2**20, np.uint8)\ndel block\n"
        "print(memory.mb)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert 512 < float(proc.stdout) < 4096


def _with_train(toy: Path, model: str, **train_kw):
    """The toy config with `models.<model>.train` updated."""
    edit_params(toy, lambda raw: raw["models"][model]["train"].update(train_kw))
    return load_config(toy / "params.yaml")


@pytest.mark.parametrize(
    ("train_kw", "reason"),
    [
        ({"epochs": 60, "eval_every": 0, "patience": 2}, "plateau"),
        ({"epochs": 60, "eval_every": 0, "patience": 0, "max_steps": 5}, "max_steps"),
        ({"epochs": 2, "eval_every": 0, "patience": 0}, "epochs"),
        ({"epochs": 60, "eval_every": 0, "patience": 0, "time_budget_s": 1e-6}, "time_budget"),
    ],
)
def test_training_records_why_it_stopped(toy: Path, train_kw: dict, reason: str) -> None:
    cfg = _with_train(toy, "textcnn", **train_kw)
    m = train(cfg, "toy", "textcnn")
    assert m["stop_reason"] == reason and m["converged"] == (reason == "plateau")
    curves = (toy / "reports" / "toy" / "textcnn" / "curves.csv").read_text().splitlines()[1:]
    assert m["evaluations"] == len(curves)
    per_epoch = 6  # 96 docs / batch 16, one evaluation per epoch (eval_every 0)
    if reason == "plateau":  # the toy saturates long before 60 epochs; stopped 2 evaluations after the best
        assert m["steps"] < 60 * per_epoch and m["steps"] - m["best_step"] == 2 * per_epoch
    if reason == "max_steps":
        assert m["steps"] == 5 and [int(r.split(",")[0]) for r in curves] == [5]
    if reason == "epochs":
        assert m["steps"] == 2 * per_epoch and len(curves) == 2
    if reason == "time_budget":  # over budget after the first step: evaluated once and stopped
        assert m["steps"] == 1 and len(curves) == 1


def test_dev_evaluations_count_towards_the_time_budget(toy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`time_budget_s` caps training wall seconds with the dev evaluations in them (a long-document corpus
    evaluated 18 times an epoch spends minutes there): each evaluation taking 0.3 s, a 1 s budget stops
    the run at its 4th, and train_time_s holds the 4 x 0.3 s."""
    real_evaluate = loop._evaluate

    def slow_evaluate(*args, **kwargs):
        time.sleep(0.3)
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(loop, "_evaluate", slow_evaluate)
    cfg = _with_train(toy, "textcnn", epochs=60, eval_every=1, patience=0, time_budget_s=1.0)
    m = train(cfg, "toy", "textcnn")
    assert m["stop_reason"] == "time_budget" and m["evaluations"] <= 4 and m["train_time_s"] >= 0.3 * m["evaluations"]


def test_frozen_encoder_heads_train_on_cached_features(
    toy: Path, bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import load_file

    from pipeline.models.bert import load_encoder_model
    from pipeline.train import features
    from pipeline.train.data import read_split

    edit_params(toy, lambda raw: raw["families"].update(bert={"arch": {"freeze_encoder": True}}))
    cfg = load_config(toy / "params.yaml")
    first = train(cfg, "toy", "bert_fnn")
    assert first["encoder_mode"] == "frozen features" and first["accuracy"] > 0.5
    cache = toy / "data" / "features" / "toy"
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [first["features_key"]]

    def no_encoding(*args, **kwargs):
        raise AssertionError("the encoder ran again although its features are cached")

    monkeypatch.setattr(features, "_encode", no_encoding)  # a second head reuses the cached states
    second = train(cfg, "toy", "bert_cnn")
    assert second["features_key"] == first["features_key"]

    # the saved model is the whole network: the untouched pretrained encoder + the trained head,
    # and it reproduces the predictions the trainer made from the cached features
    mdir = toy / "models" / "toy" / "bert_cnn"
    saved = load_file(str(mdir / "model.safetensors"))
    pretrained = load_encoder_model(str(bert_dir), None).state_dict()
    assert all(torch.equal(saved[f"embedder.encoder.{k}"], v) for k, v in pretrained.items())
    preds = pq.read_table(toy / "reports" / "toy" / "bert_cnn" / "predictions.parquet").to_pandas()
    test = read_split(toy / "data" / "tokenized" / "toy" / "subword", "test", len(LABELS))
    assert preds["id"].tolist() == test.ids
    model, config = load_trained(mdir)
    with torch.no_grad():
        probs = torch.softmax(model(*test.collate(np.arange(len(test)), pad_id=0)), -1).numpy()
    # predictions.parquet holds softmax(logits / T), T fitted on dev, undone here: dividing by T (0.23 here)
    # would amplify the cached features' float differences past the tolerance
    written = temper(np.stack(preds["probs"].to_numpy()), 1 / config.temperature, False)
    np.testing.assert_allclose(probs, written, atol=1e-4)


def test_uncovered_encoder_is_named_not_comparable() -> None:
    from pipeline.artifacts import TokenizedMeta
    from pipeline.tokenize.coverage import uncovered_reason

    raw = {
        "scheme": "subword",
        "encoder": "minilm",
        "language": "zh",
        "labels": ["a", "b"],
        "max_len": 32,
        "vocab_size": 100,
        "pad_id": 0,
        "unk_id": 1,
        "vocab_file": "vocab.json",
        "tokenizer_sha256": "x",
        "fingerprint": "y",
        "splits": {"train": {"unk_rate": 0.667}, "dev": {"unk_rate": 0.665}, "test": {"unk_rate": 0.05}},
    }
    reason = uncovered_reason(TokenizedMeta(**raw), "thucnews")
    assert "67% of train tokens as [UNK]" in reason and "datasets.thucnews.encoder" in reason
    assert "bert-base-chinese" in reason
    assert uncovered_reason(TokenizedMeta(**raw | {"splits": {"train": {"unk_rate": 0.02}}}), "thucnews") == ""
    assert uncovered_reason(TokenizedMeta(**raw | {"scheme": "vocab"}), "thucnews") == ""


@pytest.mark.slow
def test_retraining_the_first_seed_keeps_the_extra_seeds(toy: Path) -> None:
    """Before: a hand-run `textbench train` (which the report recommends) swapped in new model and report
    dirs and deleted every extra seed's results under them."""
    cfg = load_config(toy / "params.yaml")
    train(cfg, "toy", "fasttext")
    mdir, rdir = toy / "models" / "toy" / "fasttext", toy / "reports" / "toy" / "fasttext"
    train(cfg, "toy", "fasttext", seed=7, model_dir=mdir / "seeds" / "7", report_dir=rdir / "seeds" / "7")
    extra = (rdir / "seeds" / "7" / "metrics.json").read_bytes()
    train(cfg, "toy", "fasttext")
    assert (rdir / "seeds" / "7" / "metrics.json").read_bytes() == extra
    assert (mdir / "seeds" / "7" / "model.safetensors").is_file()
