"""Runs scenarios under every policy, and checks the issue's targets against the figures."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from .metrics import Timeline, summarize, timeline
from .params import SimParams
from .policies import POLICIES
from .scenarios import Scenario
from .simulator import Simulation

__all__ = ["PolicyRun", "check_targets", "run_scenario", "target_sensitivity"]

P95_TARGET_S = 60.0
BACK_TO_ZERO_TARGET_S = 120.0
COURSE_MAX_WORKERS = 15


@dataclass(frozen=True)
class PolicyRun:
    policy: str
    figures: dict[str, Any]
    timeline: Timeline


def scenario_params(base: SimParams, scenario: Scenario) -> SimParams:
    params = base.with_max_workers(scenario.max_workers)
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
        figures["policy_calls"] = policy.figures(sim.jobs)
        runs.append(PolicyRun(policy.name, figures, timeline(sim, scenario.plot_step_s)))
    return runs


def target_sensitivity(base: SimParams, scenarios: list[Scenario], targets: tuple[int, ...]) -> dict[str, Any]:
    """Ours under other values of target_backlog_per_worker: the knob between latency and cost."""
    table: dict[str, Any] = {}
    for target in targets:
        params = replace(base, settings=replace(base.settings, target_backlog_per_worker=target))
        for scenario in scenarios:
            (ours,) = run_scenario(params, replace(scenario, policies=("ours",)))
            figures = ours.figures
            table.setdefault(str(target), {})[scenario.name] = {
                key: figures[key] for key in ("p50_s", "p95_s", "peak_workers", "instance_seconds_billed")
            }
    return table


def check_targets(results: dict[str, dict[str, dict[str, Any]]], cost: dict[str, Any], deployed_workflow: str) -> dict[str, Any]:
    """The issue's targets, each with the figure it was judged on."""
    steady = results["steady-1000"]["ours"]
    burst = results["course-burst"]["ours"]
    return {
        "steady-1000: p95 upload-to-result < 60 s": _target(steady["p95_s"] is not None and steady["p95_s"] < P95_TARGET_S, steady["p95_s"]),
        "steady-1000: back to zero within 120 s of the last result": _target(
            steady["back_to_zero_s"] <= BACK_TO_ZERO_TARGET_S, steady["back_to_zero_s"]
        ),
        "steady-1000 with idle_s=80: back to zero within 120 s": _target(
            results["steady-1000-idle-80"]["ours"]["back_to_zero_s"] <= BACK_TO_ZERO_TARGET_S,
            results["steady-1000-idle-80"]["ours"]["back_to_zero_s"],
        ),
        "steady-1000: RunInstances within EC2's limits (no call throttled)": _target(
            steady["run_instances_throttled"] == 0 and steady["describe_instances_throttled"] == 0,
            {"run_instances_calls": steady["run_instances_calls"], "throttled": steady["run_instances_throttled"]},
        ),
        "course-burst: every job finished exactly once": _target(burst["every_job_finished_once"], burst["unfinished_jobs"]),
        "course-burst: at most 15 workers, back to zero": _target(
            burst["peak_workers"] <= COURSE_MAX_WORKERS and burst["fleet_returned_to_zero"], burst["peak_workers"]
        ),
        "cost: the cheaper workflow type is the deployed one": _target(
            cost["cheaper"] == deployed_workflow, {"cheaper": cost["cheaper"], "deployed": deployed_workflow}
        ),
    }


def _target(met: bool, figure: Any) -> dict[str, Any]:
    return {"met": bool(met), "figure": figure}
