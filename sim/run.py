"""Runs scenarios under every policy, and checks the issue's targets against the figures."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .metrics import Timeline, summarize, timeline
from .params import SimParams
from .policies import POLICIES
from .scenarios import Scenario, Sweep
from .simulator import Simulation

__all__ = ["SWEPT_FIGURES", "PolicyRun", "check_targets", "run_scenario", "sweep"]

P95_TARGET_S = 60.0
BACK_TO_ZERO_TARGET_S = 15.0
BACK_TO_ZERO_SCENARIOS = ("course-burst", "steady-1000", "step-down", "spike-after-idle")
# Billed instance-seconds per photo, as a multiple of the engine's own time per photo.
BILLED_PER_ENGINE = {"steady-1000": 1.4, "step-down": 1.6}
WARM_POOL_P95_S = {"course-burst-warm-pool": 12.0, "spike-after-idle-warm-pool": 15.0}
DAY_P95_S = 3.0
# The day trace's billed instance-seconds before retirement and the idle rule (commit 73f1475,
# `python -m sim --scenarios day`, at either default engine rate: one worker all day).
DAY_BILLED_BEFORE = 56_650.0
COURSE_MAX_WORKERS = 15


@dataclass(frozen=True)
class PolicyRun:
    policy: str
    figures: dict[str, Any]
    timeline: Timeline


def scenario_params(base: SimParams, scenario: Scenario) -> SimParams:
    params = base.with_max_workers(scenario.max_workers)
    if scenario.stage:
        params = params.with_stage(**scenario.stage)
    if scenario.fleet:
        params = params.with_fleet(**scenario.fleet)
    if scenario.worker:
        params = replace(params, worker=replace(params.worker, **scenario.worker))
    return params


def run_scenario(base: SimParams, scenario: Scenario) -> list[PolicyRun]:
    params = scenario_params(base, scenario)
    uploads = scenario.uploads()
    runs = []
    for policy_class in POLICIES:
        if scenario.policies and policy_class.name not in scenario.policies:
            continue
        policy = policy_class()
        started = time.perf_counter()
        sim = Simulation(params, uploads, policy).run()
        figures = summarize(sim)
        figures["wall_s"] = round(time.perf_counter() - started, 2)
        figures["billed_per_engine_time"] = round(
            figures["instance_seconds_billed"]
            / max(1, figures["jobs"])
            / params.worker.engine_s_per_photo(),
            3,
        )
        figures["policy_calls"] = policy.figures(sim.jobs)
        runs.append(PolicyRun(policy.name, figures, timeline(sim, scenario.plot_step_s)))
    return runs


def sweep(base: SimParams, scenarios: list[Scenario], swept: Sweep) -> dict[str, Any]:
    """Ours with `swept`'s field at each of its values: {value: {scenario: figures}}."""
    table: dict[str, Any] = {}
    with_value: Callable[[Any], SimParams] = {
        "settings": lambda value: base.with_settings(**{swept.field: value}),
        "worker": lambda value: replace(base, worker=replace(base.worker, **{swept.field: value})),
        "fleet": lambda value: base.with_fleet(**{swept.field: value}),
    }[swept.where]
    for value in swept.values:
        params = with_value(value)
        for scenario in scenarios:
            (ours,) = run_scenario(params, replace(scenario, policies=("ours",)))
            table.setdefault(str(value), {})[scenario.name] = {
                key: ours.figures[key] for key in SWEPT_FIGURES
            }
    return table


SWEPT_FIGURES = (
    "p50_s",
    "p95_s",
    "peak_workers",
    "instance_seconds_billed",
    "billed_per_engine_time",
    "back_to_zero_s",
)


def check_targets(
    results: dict[str, dict[str, dict[str, Any]]],
    cost: dict[str, Any] | None,
    deployed_workflow: str,
) -> dict[str, Any]:
    """The issues' targets that these results can judge, each with the figure it was judged on."""
    ours = {name: runs["ours"] for name, runs in results.items() if "ours" in runs}
    targets: dict[str, Any] = {}
    if "steady-1000" in ours:
        steady = ours["steady-1000"]
        targets["steady-1000: p95 upload-to-result < 60 s"] = _target(
            steady["p95_s"] is not None and steady["p95_s"] < P95_TARGET_S, steady["p95_s"]
        )
        targets["steady-1000: RunInstances within EC2's limits (no call throttled)"] = _target(
            steady["run_instances_throttled"] == 0 and steady["describe_instances_throttled"] == 0,
            {
                "run_instances_calls": steady["run_instances_calls"],
                "throttled": steady["run_instances_throttled"],
            },
        )
    for name, most in BILLED_PER_ENGINE.items():
        if name in ours:
            figure = ours[name]["billed_per_engine_time"]
            targets[f"{name}: billed instance-s per photo <= {most} x the engine's time"] = _target(
                figure <= most, figure
            )
    for name in BACK_TO_ZERO_SCENARIOS:
        if name in ours:
            figure = ours[name]["back_to_zero_s"]
            targets[
                f"{name}: back to zero within {BACK_TO_ZERO_TARGET_S:.0f} s of the last result"
            ] = _target(
                figure <= BACK_TO_ZERO_TARGET_S and ours[name]["fleet_returned_to_zero"], figure
            )
    for name, most in WARM_POOL_P95_S.items():
        if name in ours:
            figure = ours[name]["p95_s"]
            targets[f"{name}: p95 <= {most:.0f} s"] = _target(
                figure is not None and figure <= most, figure
            )
    if "day" in ours:
        day = ours["day"]
        targets[f"day: p95 <= {DAY_P95_S:.0f} s"] = _target(
            day["p95_s"] is not None and day["p95_s"] <= DAY_P95_S, day["p95_s"]
        )
        targets["day: billed instance-s not above before"] = _target(
            day["instance_seconds_billed"] <= DAY_BILLED_BEFORE,
            {"now": day["instance_seconds_billed"], "before": DAY_BILLED_BEFORE},
        )
    if "course-burst" in ours:
        burst = ours["course-burst"]
        targets["course-burst: every job finished exactly once"] = _target(
            burst["every_job_finished_once"], burst["unfinished_jobs"]
        )
        targets["course-burst: at most 15 workers, back to zero"] = _target(
            burst["peak_workers"] <= COURSE_MAX_WORKERS and burst["fleet_returned_to_zero"],
            burst["peak_workers"],
        )
    if cost is not None:
        targets["cost: the cheaper workflow type is the deployed one"] = _target(
            cost["cheaper"] == deployed_workflow,
            {"cheaper": cost["cheaper"], "deployed": deployed_workflow},
        )
    return targets


def _target(met: bool, figure: Any) -> dict[str, Any]:
    return {"met": bool(met), "figure": figure}
