"""What one run measured: latency percentiles, the fleet, EC2 time and calls, the way back to zero.

EC2 bills Linux on-demand instances per second with a 60-second minimum; the simulation bills
from RunInstances to termination (the instance's `running` time starts a few seconds later, so
this overstates each instance by its pending time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .simulator import Simulation

__all__ = ["EC2_MINIMUM_BILLED_S", "Timeline", "summarize", "timeline"]

EC2_MINIMUM_BILLED_S = 60.0


def summarize(sim: Simulation) -> dict[str, float | int | None]:
    # An unfinished job waited forever: it counts as infinitely late in the percentiles.
    latency = np.nan_to_num(sim.finished_s - sim.uploads, nan=np.inf)
    unfinished = int(np.isnan(sim.finished_s).sum())
    instances = sim.ec2.instances
    launched = np.array([i.launched_s for i in instances])
    ended = np.array([i.ended_s for i in instances], dtype=float)
    billed = np.maximum(ended - launched, EC2_MINIMUM_BILLED_S).sum() if instances else 0.0
    last_result = float(np.nanmax(sim.finished_s)) if sim.finished else 0.0
    fleet_zero = float(ended.max()) if instances else last_result
    calls = sim.ec2.calls
    return {
        "jobs": sim.jobs,
        "p50_s": _percentile(latency, 50),
        "p95_s": _percentile(latency, 95),
        "p99_s": _percentile(latency, 99),
        "max_s": _percentile(latency, 100),
        "peak_workers": _peak(launched, ended),
        "instances_launched": len(instances),
        "warm_starts": sum(i.warm for i in instances),
        "instance_seconds_billed": round(float(billed), 1),
        "run_instances_calls": calls["run_instances"],
        "run_instances_throttled": calls["run_instances_throttled"],
        "describe_instances_calls": calls["describe_instances"],
        "describe_instances_throttled": calls["describe_instances_throttled"],
        "max_run_instances_calls_in_any_10s": _max_in_window(sim.ec2.run_call_times, 10.0),
        "last_upload_s": round(float(sim.uploads[-1]), 3) if sim.jobs else 0.0,
        "last_result_s": round(last_result, 3),
        "fleet_zero_s": round(fleet_zero, 3),
        "back_to_zero_s": round(fleet_zero - last_result, 3),
        "fleet_returned_to_zero": calls["still_running_at_end"] == 0,
        "batches": sim.counts["batches"],
        "mean_batch": round(sim.jobs / max(1, sim.counts["batches"]), 2),
        "worker_sqs_receive": sim.counts["sqs_receive"],
        "worker_sqs_delete_batch": sim.counts["sqs_delete_batch"],
        "worker_sqs_get_queue_attributes": sim.counts["sqs_get_queue_attributes"],
        "unfinished_jobs": unfinished,
        "every_job_finished_once": bool(np.all(sim.times_finished == 1)),
    }


@dataclass(frozen=True)
class Timeline:
    """Queue depth, workers and latency sampled on a regular grid, for plots."""

    t: np.ndarray
    visible: np.ndarray
    in_flight: np.ndarray
    workers: np.ndarray
    ready_workers: np.ndarray
    p95_latency_by_upload: np.ndarray


def timeline(sim: Simulation, step_s: float) -> Timeline:
    instances = sim.ec2.instances
    end = max([sim.now, *(i.ended_s or 0 for i in instances)])
    grid = np.arange(0.0, end + step_s, step_s)
    arrived = np.searchsorted(sim.visible_at, grid, side="right")
    taken = _step(sim.take_times, sim.take_totals, grid)
    done = np.searchsorted(np.sort(sim.finished_s), grid, side="right")
    launched = np.sort([i.launched_s for i in instances])
    ready = np.sort([i.ready_s for i in instances])
    ended = np.sort([i.ended_s for i in instances])
    alive_ended = np.searchsorted(ended, grid, side="right")
    # p95 of the jobs uploaded in each grid cell, plotted at the cell's start.
    cells = np.searchsorted(grid, sim.uploads, side="right") - 1
    latency = sim.finished_s - sim.uploads
    order = np.argsort(cells, kind="stable")
    edges = np.searchsorted(cells[order], np.arange(grid.size + 1))
    p95 = np.full(grid.size, np.nan)
    for cell in range(grid.size):
        chunk = latency[order[edges[cell] : edges[cell + 1]]]
        if chunk.size:
            p95[cell] = np.percentile(chunk, 95)
    return Timeline(
        t=grid,
        visible=arrived - taken,
        in_flight=taken - done,
        workers=np.searchsorted(launched, grid, side="right") - alive_ended,
        ready_workers=np.maximum(0, np.searchsorted(ready, grid, side="right") - alive_ended),
        p95_latency_by_upload=p95,
    )


def _step(times: list[float], totals: list[int], grid: np.ndarray) -> np.ndarray:
    if not times:
        return np.zeros(grid.size, dtype=int)
    index = np.searchsorted(np.asarray(times), grid, side="right")
    values = np.concatenate([[0], np.asarray(totals)])
    return values[index]


def _percentile(values: np.ndarray, q: float) -> float | None:
    """None when there is nothing to rank or the percentile falls among unfinished jobs."""
    if not values.size:
        return None
    value = float(np.percentile(values, q, method="higher"))
    return round(value, 3) if np.isfinite(value) else None


def _peak(launched: np.ndarray, ended: np.ndarray) -> int:
    if not launched.size:
        return 0
    times = np.concatenate([launched, ended])
    steps = np.concatenate([np.ones(launched.size), -np.ones(ended.size)])
    # At equal times an end comes before a launch: a replacement is not two live workers.
    order = np.lexsort((steps, times))
    return int(np.cumsum(steps[order]).max())


def _max_in_window(times: list[float], window_s: float) -> int:
    if not times:
        return 0
    moments = np.asarray(times)
    return int(
        (np.searchsorted(moments, moments + window_s, side="left") - np.arange(moments.size)).max()
    )
