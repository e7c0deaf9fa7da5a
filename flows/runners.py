"""Task runners for `orchestration.task_runner`: local threads, Dask, or Ray, sized to the device slots.

Every task only supervises a `textbench train` subprocess, so threads are enough on one machine;
Dask and Ray spread the supervisors (and thus the trainings) over several machines.
"""

from __future__ import annotations

import contextlib
from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from pipeline.config import OrchestrationConfig
from pipeline.extras import require


def make_task_runner(orch: OrchestrationConfig, slots: int) -> TaskRunner[Any]:
    """`local`: a thread pool of `slots` workers; `dask`: `dask_address` or a LocalCluster of
    `slots` single-thread workers; `ray`: `ray_address` or a temporary Ray instance."""
    if orch.task_runner == "local":
        return ThreadPoolTaskRunner(max_workers=slots)
    if orch.task_runner == "dask":
        require("prefect_dask")
        from prefect_dask import DaskTaskRunner

        if orch.dask_address:
            return DaskTaskRunner(address=orch.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": slots, "threads_per_worker": 1, "processes": False, "dashboard_address": None}
        )
    require("prefect_ray")
    from prefect_ray import RayTaskRunner

    return RayTaskRunner(address=orch.ray_address or None)


def submit_options(orch: OrchestrationConfig, gpu_slots: bool) -> contextlib.AbstractContextManager[Any]:
    """Ray only: ask Ray for one GPU per training task (Ray then sets CUDA_VISIBLE_DEVICES)."""
    if orch.task_runner != "ray" or not gpu_slots:
        return contextlib.nullcontext()
    from prefect_ray.context import remote_options

    return remote_options(num_gpus=1)
