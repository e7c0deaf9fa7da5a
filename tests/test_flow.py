"""The benchmark flow: device slots, plan/fingerprints, skip/resume logic, failure isolation, runners.

Flow runs use Prefect's test harness (a temporary local server, no network) and the real trainer as
a subprocess on a tiny generated corpus (local CSV → prepare → tokenize `vocab`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import alive, edit_params, live_pids, proc_stat
from flows import benchmark as bm
from flows.proc import run_streaming
from flows.runners import make_task_runner
from flows.slots import CPU, auto_cpu_slots, device_slots, hold_slot, resolve_slots, slot_env
from pipeline.config import OrchestrationConfig, load_config
from pipeline.errors import TextbenchError

WORDS = {
    "sport": "goal match team score win league",
    "money": "bank rate stock market price fund",
    "tech": "chip code software robot data cloud",
}


@pytest.fixture
def tiny(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a 3-class local corpus, tokenized (vocab), and a 2-model × 2-seed benchmark."""
    from pipeline.data.prepare import prepare
    from pipeline.tokenize.stage import tokenize_dataset

    lines = ["text,label"]
    for i in range(30):
        for label, words in WORDS.items():
            w = words.split()
            lines.append(f"{w[i % 6]} {w[(i + 1) % 6]} {w[(i * 5) % 6]} item {i},{label}")
    (project / "tiny.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def edit(raw: dict) -> None:
        raw["datasets"] = {"tiny": {"kind": "local", "path": "tiny.csv", "ratios": [0.6, 0.2, 0.2], "max_len": 16}}
        raw["benchmark"] = {"datasets": ["tiny"], "models": ["textcnn", "fasttext"], "seeds": [1, 2]}
        raw["train"] = {
            **raw.get("train", {}),
            "epochs": 1,
            "batch_size": 8,
            "eval_every": 2,
            "max_steps": 4,
            "max_train_samples": 0,
            "threads": 1,
        }
        raw["models"] = {
            "textcnn": {"arch": {"embed_dim": 16, "num_filters": 8}},
            "fasttext": {"arch": {"embed_dim": 16, "ngram_buckets": 100}},
        }
        raw["orchestration"] = {"gpus": "none"}

    edit_params(project, edit)
    cfg = load_config(project / "params.yaml")
    prepare(cfg, "tiny")
    tokenize_dataset(cfg, "tiny", ("vocab",))
    monkeypatch.setenv("TEXTBENCH_SLOT_DIR", str(project / ".slots"))
    return project


def statuses(project: Path) -> dict[str, dict]:
    """Job name → the flow's status record of it."""
    return {job.name: bm.read_status(job) for job in bm.plan(load_config(project / "params.yaml"))}


# --- device slots -------------------------------------------------------------------------------


def test_resolve_slots() -> None:
    assert resolve_slots("none") == [CPU]
    assert resolve_slots("auto", detected=[]) == [CPU]
    assert resolve_slots("auto", detected=["0", "1"]) == ["0", "1"]
    assert resolve_slots("1, 3,1") == ["1", "3"]
    assert slot_env("3") == {"CUDA_VISIBLE_DEVICES": "3"} and slot_env(CPU) == {"CUDA_VISIBLE_DEVICES": ""}
    with pytest.raises(TextbenchError, match="orchestration.gpus"):
        resolve_slots("gpu0")
    # without GPUs: cpu_slots trainings at a time, each told its share of the cores
    assert resolve_slots("auto", detected=[], cpu_slots=2) == ["cpu0", "cpu1"] == resolve_slots("none", cpu_slots=2)
    assert resolve_slots("auto", detected=["0"], cpu_slots=2) == ["0"]  # GPUs win
    assert slot_env("cpu1", threads=1) == {"CUDA_VISIBLE_DEVICES": "", "TEXTBENCH_THREADS": "1"}
    assert auto_cpu_slots(2) == 2 and auto_cpu_slots(1) == 1 and auto_cpu_slots(64) == 4
    orch = OrchestrationConfig(gpus="none", cpu_slots=3)
    assert device_slots(orch) == ["cpu0", "cpu1", "cpu2"]


def test_trainer_takes_its_thread_share_from_the_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from pipeline.device import pick_device

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("TEXTBENCH_THREADS", "1")
        pick_device("cpu", 0)
        assert torch.get_num_threads() == 1
        pick_device("cpu", 2)  # an explicit train.threads wins
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_two_gpus_five_tasks_never_share_a_gpu(tmp_path: Path) -> None:
    """5 concurrent tasks on 2 fake GPUs: never two on one GPU at a time, and both GPUs get work."""
    slots = resolve_slots("auto", detected=["0", "1"])
    spans: list[tuple[str, float, float]] = []
    lock = threading.Lock()

    def work() -> None:
        with hold_slot(slots, tmp_path, poll_s=0.01) as slot:
            start = time.monotonic()
            time.sleep(0.15)
            with lock:
                spans.append((slot, start, time.monotonic()))

    threads = [threading.Thread(target=work) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(spans) == 5 and {s for s, _, _ in spans} == {"0", "1"}
    for gpu in ("0", "1"):
        mine = sorted((a, b) for s, a, b in spans if s == gpu)
        assert all(prev[1] <= nxt[0] for prev, nxt in zip(mine, mine[1:])), f"GPU {gpu} was shared: {mine}"


# --- plan, fingerprints, skip and resume decisions --------------------------------------------------


def test_plan_layout_and_per_model_fingerprints(tiny: Path) -> None:
    jobs = bm.plan(load_config(tiny / "params.yaml"))
    assert [j.name for j in jobs] == [
        "tiny/textcnn/seed1",
        "tiny/textcnn/seed2",
        "tiny/fasttext/seed1",
        "tiny/fasttext/seed2",
    ]
    first, extra = jobs[0], jobs[1]
    assert Path(first.model_dir) == tiny / "models/tiny/textcnn" and first.primary
    assert Path(extra.report_dir) == tiny / "reports/tiny/textcnn/seeds/2" and not extra.primary
    assert "--model-dir" in bm.train_command(Path("p.yaml"), extra, False)
    assert len({j.fingerprint for j in jobs}) == 4

    edit_params(tiny, lambda raw: raw["models"]["textcnn"].setdefault("train", {}).update(lr=0.0025))
    again = bm.plan(load_config(tiny / "params.yaml"))
    changed = [j.name for j, k in zip(jobs, again) if j.fingerprint != k.fingerprint]
    assert changed == ["tiny/textcnn/seed1", "tiny/textcnn/seed2"]

    edit_params(tiny, lambda raw: raw["train"].update(threads=2))  # runtime-only: results do not change
    assert [j.fingerprint for j in bm.plan(load_config(tiny / "params.yaml"))] == [k.fingerprint for k in again]
    with pytest.raises(TextbenchError, match="benchmark.models"):
        bm.plan(load_config(tiny / "params.yaml"), models=["nope"])


def test_seeds_per_family_and_per_model(tiny: Path) -> None:
    """`benchmark.seeds` as a mapping: a model's own list, else its family's, else `default`; one primary seed."""

    def names() -> list[str]:
        return [j.name for j in bm.plan(load_config(tiny / "params.yaml"))]

    edit_params(tiny, lambda raw: raw["benchmark"].update(seeds={"default": [1], "models": {"fasttext": [1, 2, 3]}}))
    assert names() == ["tiny/textcnn/seed1", "tiny/fasttext/seed1", "tiny/fasttext/seed2", "tiny/fasttext/seed3"]
    seeds = {"default": [1], "families": {"classic": [1, 5]}, "models": {"textcnn": [1]}}
    edit_params(tiny, lambda raw: raw["benchmark"].update(seeds=seeds))
    assert names() == ["tiny/textcnn/seed1", "tiny/fasttext/seed1", "tiny/fasttext/seed5"]
    for seeds, message in (
        ({"default": [1], "models": {"fasttext": [2, 1]}}, r"benchmark\.seeds: every list must start with the same"),
        ({"models": {"fasttext": [1, 2]}}, r"benchmark\.seeds\.default: Field required"),
        ({"default": [1], "models": {"fastext": [1, 2]}}, r"benchmark\.seeds: models: \['fastext'\] not among"),
        ({"default": [1], "families": {"bert_cnn": [1]}}, r"benchmark\.seeds: families: \['bert_cnn'\] not among"),
        (
            {"default": [1], "models": {"fasttext": [1, 1]}},
            r"benchmark\.seeds: models\.fasttext: seeds \[1, 1\] repeat",
        ),
    ):
        edit_params(tiny, lambda raw, seeds=seeds: raw["benchmark"].update(seeds=seeds))
        with pytest.raises(TextbenchError, match=message):
            load_config(tiny / "params.yaml")


def test_plan_skips_bert_jobs_whose_encoder_does_not_cover_the_text(tiny: Path) -> None:
    vocab = tiny / "data" / "tokenized" / "tiny" / "vocab"
    sub = vocab.parent / "subword"
    sub.mkdir()
    meta = json.loads((vocab / "meta.json").read_text())
    meta |= {
        "scheme": "subword",
        "encoder": "minilm",
        "splits": {s: {**st, "unk_rate": 0.6} for s, st in meta["splits"].items()},
    }
    (sub / "meta.json").write_text(json.dumps(meta))
    edit_params(tiny, lambda raw: raw["benchmark"].update(models=["textcnn", "bert", "bert_fnn"], seeds=[1]))
    jobs = {j.model: j for j in bm.plan(load_config(tiny / "params.yaml"))}
    assert jobs["textcnn"].skip_reason == "" and not jobs["textcnn"].frozen
    assert "60% of" in jobs["bert"].skip_reason and "datasets.tiny.encoder" in jobs["bert_fnn"].skip_reason
    edit_params(tiny, lambda raw: raw["benchmark"].update(uncovered="train"))
    edit_params(tiny, lambda raw: raw.setdefault("families", {}).update(bert={"arch": {"freeze_encoder": True}}))
    jobs = {j.model: j for j in bm.plan(load_config(tiny / "params.yaml"))}
    assert jobs["bert"].skip_reason == "" and jobs["bert"].frozen and jobs["bert_fnn"].frozen


def test_plan_needs_tokenized_data(project: Path) -> None:
    edit_params(project, lambda raw: raw["benchmark"].update(models=["textcnn"]))
    with pytest.raises(TextbenchError, match="textbench tokenize -d reuters"):
        bm.plan(load_config(project / "params.yaml"))


def test_resume_only_a_fresh_checkpoint_of_the_same_job(tiny: Path) -> None:
    job = bm.plan(load_config(tiny / "params.yaml"))[0]
    state = bm.partial_last(job) / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text("{}")
    bm.write_status(job, "running", 0.0, started_at=time.time() - 60)  # killed after checkpointing
    assert bm.can_resume(job) and bm.train_command(Path("p"), job, True)[-1] == "--resume"
    bm.write_status(job, "running", 0.0, started_at=time.time() + 60)  # checkpoint older than the run
    assert not bm.can_resume(job)
    other = bm.Job(**{**job.__dict__, "fingerprint": "0" * 16})
    bm.write_status(other, "running", 0.0, started_at=0.0)  # a run of other params
    assert not bm.can_resume(job) and not bm.is_done(job)


def test_a_hand_run_retrain_keeps_the_flows_status(tiny: Path) -> None:
    """The flow's status lies apart from the dirs the trainer swaps in whole: after a hand-run
    `textbench train` of the first seed the record is still there, so the unchanged job stays done."""
    from pipeline.train.stage import train

    cfg = load_config(tiny / "params.yaml")
    job = bm.plan(cfg, models=["textcnn"])[0]
    train(cfg, "tiny", "textcnn", seed=job.seed)
    record = bm.write_status(job, "ok", 1.0)
    train(cfg, "tiny", "textcnn", seed=job.seed)  # by hand: new model and report dirs replace the old ones
    assert bm.read_status(job) == record and bm.is_done(job)


def test_the_jobs_fingerprint_is_the_trainers_run_fingerprint_extended_by_the_code(tiny: Path) -> None:
    """One run identity (effective.run_fingerprint): the trainer records it and the flow's job
    fingerprint is it + the code version, also when the trainer derives settings from the data
    (a `batch_tokens` cap on the batch size); a change of any one input changes both."""
    from pipeline.artifacts import TokenizedMeta
    from pipeline.effective import run_fingerprint
    from pipeline.io import fingerprint
    from pipeline.train.stage import train

    edit_params(tiny, lambda raw: raw["train"].update(batch_size=64, batch_tokens=40))  # capped to 8 per batch
    cfg = load_config(tiny / "params.yaml")
    job = bm.plan(cfg, models=["textcnn"])[0]
    recorded = train(cfg, "tiny", "textcnn", seed=job.seed)
    assert recorded["params"]["train"]["batch_size"] < 64  # the trainer did resolve the cap
    assert job.fingerprint == fingerprint(recorded["fingerprint"], bm.code_version())

    meta = tiny / "data" / "tokenized" / "tiny" / "vocab" / "meta.json"
    edits = {
        "train": lambda: edit_params(tiny, lambda raw: raw["train"].update(lr=0.0025)),
        "arch": lambda: edit_params(tiny, lambda raw: raw["models"]["textcnn"]["arch"].update(num_filters=4)),
        "data": lambda: meta.write_text(json.dumps(json.loads(meta.read_text()) | {"fingerprint": "other"})),
        "labels": lambda: meta.write_text(json.dumps(json.loads(meta.read_text()) | {"labels": ["a", "b", "c"]})),
        "label mode": lambda: meta.write_text(json.dumps(json.loads(meta.read_text()) | {"label_mode": "multi"})),
        "threshold": lambda: edit_params(tiny, lambda raw: raw["datasets"]["tiny"].update(threshold=0.3)),
    }
    seen = {(job.fingerprint, recorded["fingerprint"])}
    for name, edit in edits.items():
        edit()
        cfg = load_config(tiny / "params.yaml")
        now = bm.plan(cfg, models=["textcnn"])[0]
        run = run_fingerprint(cfg, "tiny", "textcnn", now.seed, TokenizedMeta.of(meta.parent))
        assert now.fingerprint == fingerprint(run, bm.code_version()), name
        assert all(now.fingerprint != j and run != r for j, r in seen), f"{name} left the fingerprints unchanged"
        seen.add((now.fingerprint, run))
    other_seed = bm.plan(cfg, models=["textcnn"])[1]
    assert other_seed.fingerprint not in {j for j, _ in seen}


def test_run_streaming_keeps_the_last_error_line(tmp_path: Path) -> None:
    lines: list[str] = []

    class Log:
        def info(self, msg: str) -> None:
            lines.append(msg)

    code = "import sys; print('step 1\\rstep 2'); print('error: first'); print('error: disk full', file=sys.stderr); sys.exit(2)"
    rc, error = run_streaming([sys.executable, "-c", code], {"PYTHONUNBUFFERED": "1"}, tmp_path, Log())
    assert (rc, error) == (2, "error: disk full") and "step 2" in lines


def test_task_runner_choices() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    local = make_task_runner(OrchestrationConfig(), 3)
    assert isinstance(local, ThreadPoolTaskRunner) and local._max_workers == 3
    assert isinstance(
        make_task_runner(OrchestrationConfig(task_runner="dask", dask_address="tcp://h:8786"), 2), DaskTaskRunner
    )
    try:
        import prefect_ray  # noqa: F401
    except ImportError:  # not installed here: the error says how to get it
        with pytest.raises(TextbenchError, match="pip install 'prefect-ray'"):
            make_task_runner(OrchestrationConfig(task_runner="ray"), 1)


# --- the flow (Prefect test server) -----------------------------------------------------------------

# A stand-in trainer with the real CLI's arguments and output layout (whole dirs swapped in with
# atomic_dir, like pipeline.train): fast, and it fails on demand with an `error:` line.
FAKE_TRAINER = """
import argparse, json, os, sys
from pathlib import Path
from pipeline.evaluate import classification_metrics
from pipeline.io import atomic_dir, fingerprint, write_json
p = argparse.ArgumentParser()
for a in ("--params", "--dataset", "--model", "--seed", "--model-dir", "--report-dir"):
    p.add_argument(a)
p.add_argument("--resume", action="store_true")
a = p.parse_args()
with open(os.environ["FAKE_CALLS"], "a") as f:
    f.write(f"{a.model}/{a.seed}{' resume' if a.resume else ''}\\n")
print("loading data")
if a.model in os.environ.get("FAKE_FAIL", "").split(","):
    print("error: models.x: boom (fix it)", file=sys.stderr)
    sys.exit(2)
mdir = Path(a.model_dir or f"models/{a.dataset}/{a.model}")
rdir = Path(a.report_dir or f"reports/{a.dataset}/{a.model}")
fp = fingerprint(Path(a.params).read_text(), a.model, a.seed)
with atomic_dir(mdir) as tmp:
    (tmp / "model.safetensors").write_bytes(b"w")
with atomic_dir(rdir) as tmp:
    write_json(tmp / "metrics.json", {"seed": int(a.seed), "fingerprint": fp, "train_time_s": 1.0,
                                      **classification_metrics([0, 1], [0, 0], ["a", "b"])})
"""


@pytest.fixture
def fake_trainer(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Route the flow's training subprocesses to FAKE_TRAINER; returns the file listing its calls."""
    script, calls = tiny / "fake_train.py", tiny / "calls.log"
    script.write_text(FAKE_TRAINER, encoding="utf-8")
    calls.write_text("")
    monkeypatch.setenv("FAKE_CALLS", str(calls))
    real = bm.train_command
    monkeypatch.setattr(
        bm, "train_command", lambda params, job, resume: [sys.executable, str(script), *real(params, job, resume)[4:]]
    )
    return calls


def calls_of(log: Path) -> list[str]:
    lines = sorted(log.read_text().split())
    log.write_text("")
    return lines


def last_flow_run_states() -> dict[str, str]:
    """Task-run name → state name of the latest flow run on the test server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        run = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    return {t.name: t.state.name for t in tasks if t.name.startswith("train ")}


def latest_artifact(key: str):
    """The latest version of the artifact `key` on the test server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key]))
        )
    assert len(found) == 1, f"no artifact {key}"
    return found[0]


@pytest.mark.slow
def test_flow_isolates_failures_skips_unchanged_and_retrains_one_model(
    tiny: Path, fake_trainer: Path, prefect_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = tiny / "params.yaml"
    monkeypatch.setenv("FAKE_FAIL", "fasttext")
    edit_params(tiny, lambda raw: raw["orchestration"].update(retries=1))
    results = {r["job"]: r for r in bm.run_benchmark(params)}
    assert {k: r["status"] for k, r in results.items()} == {
        "tiny/textcnn/seed1": "ok",
        "tiny/textcnn/seed2": "ok",
        "tiny/fasttext/seed1": "failed",
        "tiny/fasttext/seed2": "failed",
    }
    assert fake_trainer.read_text().count("fasttext/1") == 2  # retried once, then recorded as failed
    st = statuses(tiny)
    assert st["tiny/fasttext/seed1"]["error"] == "error: models.x: boom (fix it)"
    assert st["tiny/fasttext/seed1"]["job_fingerprint"] == bm.plan(load_config(params))[2].fingerprint
    metrics = json.loads((tiny / "reports/tiny/textcnn/metrics.json").read_text())
    assert metrics["seed"] == 1 and st["tiny/textcnn/seed1"]["fingerprint"] == metrics["fingerprint"]
    assert json.loads((tiny / "reports/tiny/textcnn/seeds/2/metrics.json").read_text())["seed"] == 2
    calls_of(fake_trainer)

    # fixed fasttext trains; unchanged textcnn is skipped
    monkeypatch.setenv("FAKE_FAIL", "")
    assert [r["status"] for r in bm.run_benchmark(params)] == ["skipped", "skipped", "ok", "ok"]
    assert calls_of(fake_trainer) == ["fasttext/1", "fasttext/2"]
    assert last_flow_run_states() == {
        "train tiny/textcnn seed 1": "Skipped",
        "train tiny/textcnn seed 2": "Skipped",
        "train tiny/fasttext seed 1": "Completed",
        "train tiny/fasttext seed 2": "Completed",
    }
    table, link = latest_artifact("textbench-table-tiny"), latest_artifact("textbench-report")
    assert [(r["model"], r["seed"], r["status"], r["stop_reason"]) for r in json.loads(table.data)] == [
        ("textcnn", "1", "skipped", "—"),
        ("textcnn", "2", "skipped", "—"),
        ("fasttext", "1", "ok", "—"),
        ("fasttext", "2", "ok", "—"),
    ]
    assert link.type == "markdown" and (tiny / "reports/index.html").as_uri() in link.data

    # one model's lr changes: only it retrains (on Dask), and its extra seed's dirs survive the swap
    edit_params(tiny, lambda raw: raw["models"]["textcnn"].setdefault("train", {}).update(lr=0.0025))
    assert [r["status"] for r in bm.run_benchmark(params, runner="dask")] == ["ok", "ok", "skipped", "skipped"]
    assert calls_of(fake_trainer) == ["textcnn/1", "textcnn/2"]
    assert (tiny / "reports/tiny/textcnn/seeds/2/metrics.json").is_file()
    assert (tiny / "models/tiny/textcnn/seeds/2/model.safetensors").is_file()
    assert all(s["status"] == "skipped" for s in bm.run_benchmark(params))
    assert calls_of(fake_trainer) == []


@pytest.mark.slow
def test_killed_run_resumes_only_the_unfinished_model(tiny: Path, fake_trainer: Path, prefect_server) -> None:
    params = tiny / "params.yaml"
    edit_params(tiny, lambda raw: raw["benchmark"].update(seeds=[1]))
    bm.run_benchmark(params)
    calls_of(fake_trainer)
    textcnn = bm.plan(load_config(params))[0]  # as if `kill -9` hit textcnn after a checkpoint
    bm.write_status(textcnn, "running", 0.0, started_at=time.time() - 5)
    (bm.partial_last(textcnn)).mkdir(parents=True)
    (bm.partial_last(textcnn) / "state.json").write_text("{}")
    assert [r["status"] for r in bm.run_benchmark(params)] == ["ok", "skipped"]
    assert calls_of(fake_trainer) == ["resume", "textcnn/1"]


@pytest.mark.slow
def test_flow_with_the_real_trainer(tiny: Path, prefect_server) -> None:
    """One real `textbench train` subprocess: model and report dirs, status fingerprint = metrics fingerprint."""
    params = tiny / "params.yaml"
    edit_params(tiny, lambda raw: raw["benchmark"].update(models=["textcnn"], seeds=[7]))
    [result] = bm.run_benchmark(params)
    assert result["status"] == "ok", result
    metrics = json.loads((tiny / "reports/tiny/textcnn/metrics.json").read_text())
    assert metrics["seed"] == 7 and result["fingerprint"] == metrics["fingerprint"]
    assert (tiny / "models/tiny/textcnn/model.safetensors").is_file()
    assert [r["status"] for r in bm.run_benchmark(params)] == ["skipped"]


@pytest.mark.slow
def test_signals_stop_running_trainings_and_start_no_new_one(tmp_path: Path) -> None:
    """What SIGINT/SIGTERM of `textbench benchmark` does in the flow: the trainings in their own sessions
    die too, no new one starts, then the signal does what it did before (here: an exception)."""
    from flows.proc import Stopped, stop_children_on_signals

    out: list[BaseException] = []

    class Log:
        def info(self, msg: str) -> None:
            pass

    def supervise() -> None:
        try:
            run_streaming(
                [sys.executable, "-c", "import time; print('training', flush=True); time.sleep(60)"],
                {},
                tmp_path,
                Log(),
            )
        except Stopped as e:
            out.append(e)

    with pytest.raises(SystemExit) as exit_, stop_children_on_signals():
        t = threading.Thread(target=supervise)
        t.start()
        time.sleep(1.0)
        start = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # not reached: the handler raises
    t.join(timeout=20)
    assert exit_.value.code == 143 and out and time.monotonic() - start < 10
    with pytest.raises(Stopped):  # nothing new starts while the run stops...
        run_streaming([sys.executable, "-c", "pass"], {}, tmp_path, Log())
    with stop_children_on_signals():  # ...until the next run
        assert run_streaming([sys.executable, "-c", "pass"], {}, tmp_path, Log()) == (0, "")


# --- kill -9, SIGTERM and the job lock: real processes ------------------------------------------------


def _slow(raw: dict) -> None:
    """Only textcnn seed 1, training until stopped."""
    raw["benchmark"].update(models=["textcnn"], seeds=[1])
    raw["train"].update(epochs=100000, max_steps=0, patience=0)


def start_run(project: Path, server: str) -> subprocess.Popen[bytes]:
    """`textbench benchmark` in `project` as a real process on the test's Prefect server."""
    env = {**os.environ, "PREFECT_API_URL": server, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "benchmark"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is `pid`."""
    return [p for p in live_pids() if (stat := proc_stat(p)) and int(stat[1]) == pid]


def wait_for(what, timeout: float, proc: subprocess.Popen[bytes] | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := what():
            return found
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {proc.stderr.read().decode()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_kill_9_of_run_kills_its_trainer(tiny: Path, prefect_server: str) -> None:
    edit_params(tiny, _slow)
    run = start_run(tiny, prefect_server)
    try:
        [trainer] = wait_for(lambda: children(run.pid), 120, run)
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        wait_for(lambda: not alive(trainer), 5)  # no orphan keeps training (and writing) under PID 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigterm_stops_run_and_its_trainer_within_seconds(tiny: Path, prefect_server: str) -> None:
    edit_params(tiny, _slow)
    run = start_run(tiny, prefect_server)
    try:
        [trainer] = wait_for(lambda: children(run.pid), 120, run)
        os.kill(run.pid, signal.SIGTERM)  # what systemd, Docker or a CI runner send first
        start = time.monotonic()
        _, err = run.communicate(timeout=15)
        took = time.monotonic() - start
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
    text = err.decode()
    assert run.returncode == 143 and took < 5, (run.returncode, took, text[-3000:])
    assert "Traceback" not in text and text.splitlines()[-1].startswith("stopped by SIGTERM:"), text[-3000:]
    assert not alive(trainer)
    status = json.loads((tiny / "reports/tiny/.status/textcnn/1.json").read_text())
    assert status["status"] == "running"  # killed mid-run: the next run resumes it


@pytest.mark.slow
def test_a_second_trainer_of_a_job_exits_2_naming_the_dir(tiny: Path) -> None:
    from pipeline import paths
    from pipeline.io import locked

    model_dir = paths.model_dir("tiny", "textcnn")
    with locked(paths.job_lock(model_dir)):  # as the first trainer holds it
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", "train", "-d", "tiny", "-m", "textcnn"],
            cwd=tiny,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"error: {model_dir}: another trainer is writing it")
    assert f"pid {os.getpid()} holds" in proc.stderr
    assert not model_dir.exists()


@pytest.mark.slow
def test_a_training_failing_inside_the_loop_reports_the_trainers_error(tiny: Path, prefect_server) -> None:
    """The trainer's `error:` line lands below its progress bar, so status.json (and the report) carry it."""

    def diverge(raw: dict) -> None:
        raw["benchmark"].update(models=["textcnn"], seeds=[1])
        raw["models"]["textcnn"]["train"] = {"lr": 1e30, "warmup_ratio": 0.0, "grad_clip": 0.0}

    edit_params(tiny, diverge)
    [result] = bm.run_benchmark(tiny / "params.yaml")
    status = json.loads((tiny / "reports/tiny/.status/textcnn/1.json").read_text())
    assert result["status"] == status["status"] == "failed"
    assert status["error"].startswith("error: training diverged: loss is"), status["error"]
