"""The benchmark flow: one `textbench train` process per (dataset, model, seed), fanned out by Prefect.

    plan(cfg)          every Job with its output dirs and fingerprint (first seed → models|reports/<ds>/<model>/,
                       extra seeds → models|reports/<ds>/<model>/seeds/<seed>/)
    train              Prefect task, one job: skip if the fingerprint is unchanged (a `Skipped` state), else hold
                       a device slot and run `textbench train` as a subprocess (memory and CUDA state die with it)
    benchmark          Prefect flow: submit every job, update a progress artifact as they finish, then
                       publish the comparison (markdown), a table per dataset and a link to reports/index.html;
                       one failing model never stops the others

Each job's outcome is its status.json (`paths.job_status`: reports/<ds>/.status/<model>/<seed>.json,
written only here, never inside the dirs the trainer replaces):
`status` ok | failed | skipped (unchanged, results reused) | not_comparable (not trained: `skip_reason`) |
running (killed mid-run: the next run
resumes it from the trainer's `paths.partial_dir`), `error` (the trainer's last `error:` line),
`fingerprint` (metrics.json's, so a report can tell stale results), `job_fingerprint` (what the
skip decision compares: the trainer's `effective.run_fingerprint` + training code), `wall_time_s`.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import allow_failure, flow, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.states import Completed, State
from tqdm import tqdm

from flows.proc import Stopped, run_streaming, start_temporary_server, stop_children_on_signals
from flows.runners import make_task_runner, submit_options
from flows.slots import device_slots, hold_slot, is_cpu, slot_env
from pipeline import paths
from pipeline.artifacts import HEADLINE, SUMMARY, Artifact, RunMetrics, RunStatus, TokenizedMeta
from pipeline.config import Config, load_config
from pipeline.errors import TextbenchError
from pipeline.io import fingerprint
from pipeline.tokenize.coverage import uncovered_reason

# Sources whose change invalidates trained models (the trainer and the architectures).
CODE_DIRS = ("models", "train")
CODE_FILES = ("evaluate.py", "device.py", "effective.py")


@dataclass(frozen=True)
class Job:
    """One training run and where its outputs go."""

    dataset: str
    model: str
    seed: int
    scheme: str
    model_dir: str
    report_dir: str
    fingerprint: str
    primary: bool  # first seed: writes models|reports/<ds>/<model>/
    skip_reason: str = ""  # not trained: e.g. the encoder does not cover the language (benchmark.uncovered)
    frozen: bool = False  # a frozen-encoder head: trains on the dataset's cached encoder features

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.model}/seed{self.seed}"

    @property
    def status_path(self) -> Path:
        return paths.job_status(self.dataset, self.model, self.seed)


class TrainingFailed(Exception):
    """The trainer exited non-zero; the message is its last `error:` line (or the exit status)."""


def code_version() -> str:
    """Hash of the training code (pipeline/models, pipeline/train, pipeline/evaluate.py) and torch version."""
    import torch

    base = Path(paths.__file__).parent
    files = sorted(p for d in CODE_DIRS for p in (base / d).rglob("*.py")) + [base / f for f in CODE_FILES]
    return fingerprint(torch.__version__, *[(p.relative_to(base).as_posix(), p.read_bytes().hex()) for p in files])


def plan(cfg: Config, datasets: list[str] | None = None, models: list[str] | None = None) -> list[Job]:
    """Every (dataset, model, seed) of `benchmark`, optionally narrowed to some datasets/models."""
    from pipeline.effective import run_fingerprint
    from pipeline.models.registry import entry, resolve_arch

    for given, known, key in ((datasets, cfg.benchmark.datasets, "datasets"), (models, cfg.benchmark.models, "models")):
        unknown = sorted(set(given or ()) - set(known))
        if unknown:
            raise TextbenchError(f"{unknown} not in {cfg.source} benchmark.{key} ({known})")
    code = code_version()
    jobs = []
    for ds in cfg.benchmark.datasets:
        if datasets and ds not in datasets:
            continue
        for model in cfg.benchmark.models:
            if models and model not in models:
                continue
            scheme = entry(model).scheme
            arch = resolve_arch(model, cfg.arch_for(model))
            meta = TokenizedMeta.of(paths.tokenized_dir(ds, scheme))
            skip = uncovered_reason(meta, ds) if cfg.benchmark.uncovered == "skip" else ""
            for i, seed in enumerate(cfg.benchmark.seeds_for(model)):
                mdir, rdir = paths.model_dir(ds, model), paths.report_dir(ds, model)
                if i:
                    mdir, rdir = paths.seed_dir(mdir, seed), paths.seed_dir(rdir, seed)
                fp = fingerprint(run_fingerprint(cfg, ds, model, seed, meta), code)  # the trainer's + code
                jobs.append(
                    Job(
                        ds,
                        model,
                        seed,
                        scheme,
                        str(mdir),
                        str(rdir),
                        fp,
                        primary=i == 0,
                        skip_reason=skip,
                        frozen=scheme == "subword" and bool(arch.get("freeze_encoder")),
                    )
                )
    return jobs


def read_or_empty(kind: type[Artifact], path: Path) -> dict[str, Any]:
    """The typed artifact at `path` as written; {} when absent or broken (the job is then simply redone)."""
    try:
        return kind.read(path, "").as_dict()
    except TextbenchError:
        return {}


def read_status(job: Job) -> dict[str, Any]:
    return read_or_empty(RunStatus, job.status_path)


def is_done(job: Job) -> bool:
    """True when a run of this exact job fingerprint succeeded and its outputs are still the ones it wrote."""
    status = read_status(job)
    metrics = read_or_empty(RunMetrics, Path(job.report_dir) / paths.METRICS)
    return (
        status.get("status") in ("ok", "skipped")
        and status.get("job_fingerprint") == job.fingerprint
        and bool(metrics)
        and metrics.get("fingerprint") == status.get("fingerprint")
        and (Path(job.model_dir) / paths.WEIGHTS).is_file()
    )


def partial_last(job: Job) -> Path:
    """Where the trainer keeps the resumable state of an unfinished run."""
    return paths.partial_dir(Path(job.model_dir)) / "last"


def can_resume(job: Job) -> bool:
    """A run of this job fingerprint was killed (or failed) after checkpointing: continue it.

    The checkpoint must be newer than that run's start, so a stale `.partial` of other params is
    never resumed (the trainer would refuse it).
    """
    status = read_status(job)
    state = partial_last(job) / "state.json"
    return (
        status.get("status") in ("running", "failed")
        and status.get("job_fingerprint") == job.fingerprint
        and state.is_file()
        and state.stat().st_mtime >= float(status.get("started_at", float("inf")))
    )


def write_status(job: Job, status: str, wall_time_s: float, error: str = "", **extra: Any) -> dict[str, Any]:
    """Write status.json; `fingerprint` is metrics.json's when the run succeeded, else the job's."""
    ok = status in ("ok", "skipped")
    metrics_fp = read_or_empty(RunMetrics, Path(job.report_dir) / paths.METRICS).get("fingerprint") if ok else None
    record = RunStatus(
        status=status,
        error=error,
        fingerprint=metrics_fp or job.fingerprint,
        job_fingerprint=job.fingerprint,
        wall_time_s=round(wall_time_s, 3),
        dataset=job.dataset,
        model=job.model,
        seed=job.seed,
        **extra,
    )
    record.write(job.status_path)
    return record.as_dict()


def train_command(params: Path, job: Job, resume: bool) -> list[str]:
    """The `textbench train` invocation for `job` (same interpreter, so the same environment)."""
    cmd = [
        sys.executable,
        "-m",
        "pipeline",
        "train",
        "--params",
        str(params),
        "--dataset",
        job.dataset,
        "--model",
        job.model,
        "--seed",
        str(job.seed),
    ]
    if not job.primary:
        cmd += ["--model-dir", job.model_dir, "--report-dir", job.report_dir]
    return cmd + (["--resume"] if resume else [])


def slot_dir() -> Path:
    """Where slot locks live: $TEXTBENCH_SLOT_DIR, else one folder per machine under the temp dir."""
    return Path(os.environ.get("TEXTBENCH_SLOT_DIR") or Path(tempfile.gettempdir()) / "textbench-slots")


@task(cache_policy=NO_CACHE, task_run_name="encoder features {dataset}")
def features(dataset: str, params: str, slots: list[str], root: str) -> str:
    """Compute the frozen encoder's cached token states once, before the BERT-family heads train on them.
    A failure here only costs time: each training computes any missing features itself."""
    log = get_run_logger()
    cmd = [sys.executable, "-m", "pipeline", "features", "--params", params, "--dataset", dataset]
    with hold_slot(slots, slot_dir()) as slot:
        log.info(f"{dataset}: encoder features on {slot}")
        try:
            code, error = run_streaming(cmd, slot_environment(slot, slots, root), Path(root), log)
        except Stopped:  # SIGINT/SIGTERM: the run is ending anyway
            return dataset
    if code != 0:
        raise TrainingFailed(error or f"error: textbench features exited with status {code}")
    return dataset


def slot_environment(slot: str, slots: list[str], root: str) -> dict[str, str]:
    """The environment of a subprocess in `slot`: its device (or CPU threads share) and the project root."""
    threads = max(1, (os.cpu_count() or 1) // len(slots)) if is_cpu(slot) else 0
    return {
        **os.environ,
        **slot_env(slot, threads),
        "PYTHONUNBUFFERED": "1",
        "TQDM_MININTERVAL": "30",
        "TEXTBENCH_ROOT": root,
    }


@task(cache_policy=NO_CACHE, task_run_name="train {job.dataset}/{job.model} seed {job.seed}")
def train(job: Job, params: str, slots: list[str], root: str, force: bool = False) -> dict[str, Any] | State:
    """Train one job unless its fingerprint is unchanged (then end in a `Skipped` state carrying the
    status record); raise TrainingFailed with the error line."""
    log = get_run_logger()
    if job.skip_reason:
        log.warning(
            f"{job.name}: not trained, not comparable: {job.skip_reason} (benchmark.uncovered: train trains it anyway)"
        )
        return write_status(job, "not_comparable", 0.0, error=job.skip_reason)
    if not force and is_done(job):
        log.info(f"{job.name}: unchanged (job fingerprint {job.fingerprint}), reusing earlier results")
        record = write_status(job, "skipped", read_status(job).get("wall_time_s", 0.0))
        return Completed(name="Skipped", data=record, message="unchanged: earlier results reused")
    resume = not force and can_resume(job)
    with hold_slot(slots, slot_dir()) as slot:
        log.info(f"{job.name}: training on {slot}{' (resuming the killed run)' if resume else ''}")
        started = time.time()
        write_status(job, "running", 0.0, slot=slot, started_at=started)
        try:
            code, error = run_streaming(
                train_command(Path(params), job, resume), slot_environment(slot, slots, root), Path(root), log
            )
        except Stopped:  # SIGINT/SIGTERM: status.json stays `running`, so the next run resumes the job
            log.warning(f"{job.name}: stopped by a signal; the next run resumes it")
            return read_status(job)
        wall = time.time() - started
        if code != 0:
            error = error or f"error: textbench train exited with status {code}"
            write_status(job, "failed", wall, error=error, slot=slot, started_at=started)
            raise TrainingFailed(error)
        return write_status(job, "ok", wall, slot=slot)


def job_rows(jobs: list[Job], results: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """One row per job: its status (with the error when it has no scores), headline scores, stop reason."""
    rows = []
    for job in jobs:
        status = results.get(job.name, {"status": "failed", "error": "did not finish"})
        shown = status["status"] not in ("failed", "not_comparable")
        m = read_or_empty(RunMetrics, Path(job.report_dir) / paths.METRICS) if shown else {}
        cell = status["status"] if shown else f"{status['status'].replace('_', ' ')}: {status.get('error', '')}"
        scores = {k: f"{m[k]:.4f}" if isinstance(m.get(k), (int, float)) else "—" for k in SUMMARY}
        secs = f"{m['train_time_s']:.0f}" if isinstance(m.get("train_time_s"), (int, float)) else "—"
        rows.append(
            {
                "dataset": job.dataset,
                "model": job.model,
                "seed": str(job.seed),
                "status": cell,
                **scores,
                "train_s": secs,
                "stop_reason": str(m.get("stop_reason") or "—"),
            }
        )
    return rows


def shown_scores(rows: list[dict[str, str]]) -> list[str]:
    """The headline scores (artifacts.HEADLINE) of `job_rows` worth a column: the single-label ones, and
    a multi-label run's (micro-F1) where some row has them."""
    single = list(HEADLINE["single"])
    return single + [k for k in SUMMARY if k not in single and any(row[k] != "—" for row in rows)]


def comparison_markdown(rows: list[dict[str, str]]) -> str:
    """Markdown table of `job_rows`."""
    scores = shown_scores(rows)
    keys = ("dataset", "model", "seed", "status", *scores, "train_s")
    names = [{**HEADLINE["multi"], **HEADLINE["single"]}[k] for k in scores]  # accuracy: a mix of both kinds
    lines = [
        f"| dataset | model | seed | status | {' | '.join(names)} | train s |",
        "|---|---|---|---|" + "---:|" * (len(scores) + 1),
    ]
    return "\n".join(lines + [f"| {' | '.join(row[k] for k in keys)} |" for row in rows]) + "\n"


def artifact_key(name: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) naming `name`."""
    return re.sub(r"[^a-z0-9]+", "-", f"textbench-{name}".lower()).strip("-")


def publish(jobs: list[Job], results: dict[str, dict[str, Any]]) -> None:
    """The flow's artifacts: the comparison (markdown), one table per dataset, a link to the HTML report."""
    rows = job_rows(jobs, results)
    create_markdown_artifact(
        comparison_markdown(rows),
        key="textbench-comparison",
        description="textbench: status and headline scores per dataset × model × seed",
    )
    for ds in dict.fromkeys(job.dataset for job in jobs):
        mine = [row for row in rows if row["dataset"] == ds]
        table = ("model", "seed", "status", *shown_scores(mine), "stop_reason")
        create_table_artifact(
            [{k: row[k] for k in table} for row in mine],
            key=artifact_key(f"table-{ds}"),
            description=f"textbench: {ds}, one row per model × seed",
        )
    create_link_artifact(
        paths.index_html().resolve().as_uri(),
        link_text="textbench report",
        key="textbench-report",
        description="the HTML report (written by `textbench report`)",
    )


@flow(name="textbench-benchmark", log_prints=True)
def benchmark(
    params: str = "params.yaml", datasets: list[str] | None = None, models: list[str] | None = None, force: bool = False
) -> list[dict[str, Any]]:
    """Train every planned job (skipping unchanged ones) and return each job's status record."""
    cfg = load_config(params)
    jobs = plan(cfg, datasets, models)
    root = str(paths.root())
    params_abs = str(Path(params).resolve())
    slots = device_slots(cfg.orchestration)
    with stop_children_on_signals():  # SIGINT/SIGTERM: kill the trainings first, then let Prefect stop
        results = _train_all(jobs, cfg, params_abs, slots, root, force)
    publish(jobs, results)
    return [{**results[job.name], "job": job.name} for job in jobs]


def _train_all(
    jobs: list[Job], cfg: Config, params: str, slots: list[str], root: str, force: bool
) -> dict[str, dict[str, Any]]:
    """Submit every job (extra seeds after the first, frozen heads after their features) and collect
    each one's status record as it finishes."""
    retrying = train.with_options(retries=cfg.orchestration.retries, retry_delay_seconds=10)
    futures: dict[PrefectFuture[Any], Job] = {}
    primary: dict[tuple[str, str], PrefectFuture[Any]] = {}
    with submit_options(cfg.orchestration, gpu_slots=not is_cpu(slots[0])):
        # one encoder pass per dataset before its frozen-encoder heads (submitted first, so it runs
        # while the classic models train; the heads are planned last and wait for it)
        encoded = {
            ds: features.submit(ds, params, slots, root)
            for ds in dict.fromkeys(
                j.dataset for j in jobs if j.frozen and not j.skip_reason and (force or not is_done(j))
            )
        }
        for job in jobs:  # extra seeds wait for the first seed, which replaces the model's dirs
            after = [] if job.primary else [allow_failure(primary[job.dataset, job.model])]
            if job.frozen and job.dataset in encoded:
                after.append(allow_failure(encoded[job.dataset]))
            future = retrying.submit(job, params, slots, root, force, wait_for=after)
            primary.setdefault((job.dataset, job.model), future)
            futures[future] = job
    progress = create_progress_artifact(0.0, key="textbench-progress", description="trained or skipped jobs")
    results: dict[str, dict[str, Any]] = {}
    with tqdm(total=len(jobs), desc="benchmark", unit="model", file=sys.stderr) as bar:
        for future in as_completed(list(futures)):
            job = futures[future]
            try:
                results[job.name] = future.result()
            except Exception as e:  # the task wrote status.json unless it never started (e.g. crashed)
                status = read_status(job)
                mine = status.get("status") == "failed" and status.get("job_fingerprint") == job.fingerprint
                results[job.name] = (
                    status if mine else write_status(job, "failed", 0.0, error=f"error: {type(e).__name__}: {e}")
                )
                get_run_logger().error(f"{job.name} failed: {results[job.name]['error']}")
            bar.update()
            update_progress_artifact(progress, 100.0 * len(results) / max(len(jobs), 1))
    return results


def run_benchmark(
    params: Path,
    datasets: list[str] | None = None,
    models: list[str] | None = None,
    force: bool = False,
    runner: str | None = None,
) -> list[dict[str, Any]]:
    """Run the flow with the task runner of `orchestration` (or `runner`), sized to the device slots."""
    cfg = load_config(params)
    orch = cfg.orchestration if runner is None else cfg.orchestration.model_copy(update={"task_runner": runner})
    slots = device_slots(orch)
    configured = benchmark.with_options(task_runner=make_task_runner(orch, len(slots)))
    with prefect_defaults():
        start_temporary_server()
        return configured(str(params), datasets, models, force)


def prefect_defaults() -> AbstractContextManager[Any]:
    """No analytics, and patience for the temporary server on a busy machine (unless set in the env)."""
    from prefect.settings import (
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    updates = {
        setting: value
        for setting, value in (
            (PREFECT_SERVER_ANALYTICS_ENABLED, False),
            (PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, 300),
        )
        if setting.name not in os.environ
    }
    return temporary_settings(updates=updates)
