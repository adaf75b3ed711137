"""The simulator's invariants on small traces, under every policy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim import traces
from sim.limits import RUN_INSTANCES_REQUESTS, TokenBucket
from sim.metrics import summarize, timeline
from sim.policies import POLICIES, Ours, Seed
from sim.simulator import Simulation


def run(params, uploads, policy):
    sim = Simulation(params, uploads, policy).run()
    return sim, summarize(sim)


@pytest.mark.parametrize("policy_class", POLICIES, ids=lambda p: p.name)
def test_every_job_finishes_exactly_once_after_it_was_uploaded(params, policy_class):
    uploads = np.concatenate([traces.burst(100, within_s=1.0), traces.steady(20, 60) + 5])
    sim, figures = run(params, uploads, policy_class())
    assert figures["unfinished_jobs"] == 0
    assert figures["every_job_finished_once"]
    assert np.all(sim.finished_s >= sim.visible_at)
    assert sim.taken == sim.finished == sim.jobs and sim.in_flight == 0


# Target tracking never launches for 100 messages, fewer than its target per instance
# (test_a_policy_that_never_launches_leaves_jobs_unfinished_not_a_hang).
LAUNCHING = [policy for policy in POLICIES if policy.name != "aws-target-tracking"]


@pytest.mark.parametrize("policy_class", LAUNCHING, ids=lambda p: p.name)
def test_after_a_burst_the_fleet_is_back_to_zero_within_the_idle_floor(params, policy_class):
    sim, figures = run(params, traces.burst(100, within_s=1.0), policy_class())
    floor = params.worker.settings.idle_seconds
    assert figures["fleet_returned_to_zero"]
    assert all(i.ended_s is not None for i in sim.ec2.instances)
    # Long polls shrink to the idle time left, so a worker ends within a second of the floor after
    # its last work (or its boot, for one the seed launched too late to get any).
    assert floor <= figures["back_to_zero_s"] <= floor + 2


def test_our_fleet_never_exceeds_the_cap_although_ec2_lists_launches_late(params):
    lagging = params.with_fleet(describe_lag_s=5.0)
    sim, figures = run(lagging, traces.steady(300, 60), Ours())
    line = timeline(sim, 0.5)
    assert figures["peak_workers"] == line.workers.max() == lagging.max_workers


def test_the_seed_overshoots_its_cap_when_ec2_lists_launches_late(params):
    """One per visible message against DescribeInstances alone: a lag longer than its loop
    launches the same workers twice. The lease's launch grace is what prevents this in ours."""
    _, prompt = run(params.with_fleet(describe_lag_s=0.0), traces.burst(100, within_s=1.0), Seed())
    _, lagging = run(params.with_fleet(describe_lag_s=2.0), traces.burst(100, within_s=1.0), Seed())
    assert prompt["peak_workers"] == params.max_workers
    assert lagging["peak_workers"] > params.max_workers


def test_our_run_instances_calls_fit_ec2s_token_bucket(params):
    sim, figures = run(params.with_max_workers(100), traces.steady(500, 60), Ours())
    bucket = TokenBucket(RUN_INSTANCES_REQUESTS)
    assert figures["run_instances_calls"] > 1
    assert all(bucket.take(moment) for moment in sim.ec2.run_call_times)
    assert figures["run_instances_throttled"] == 0
    assert figures["max_run_instances_calls_in_any_10s"] <= 10


def test_ours_drives_the_real_policy_target(params):
    """desired_workers: enough workers to drain the backlog within the objective, rounded up."""
    burst = traces.burst(100, within_s=1.0)
    settings = params.settings
    _, default = run(params, burst, Ours())
    _, eager = run(
        params.with_settings(drain_objective_seconds=100 / settings.worker_photos_per_second / 10),
        burst,
        Ours(),
    )
    assert default["peak_workers"] == math.ceil(
        100 / (settings.worker_photos_per_second * settings.drain_objective_seconds)
    )
    assert eager["peak_workers"] == 10


def test_a_trickle_keeps_its_worker_rather_than_a_boot_per_photo(params):
    """Uploads every 25 s: the idle rule waits twice the gap (up to its maximum), so one worker
    serves them all, where a fixed idle time of the floor would relaunch for each."""
    uploads = np.arange(0.0, 600.0, 25.0)
    sim, figures = run(params, uploads, Ours())
    assert figures["instances_launched"] == 1
    assert sim.ec2.instances[0].ended_s > uploads[-1]


def test_surplus_workers_retire_under_load_and_every_job_is_done_once(params):
    """300 uploads/s for a minute, then 20/s: the fleet sized for the peak shrinks while work goes
    on, without an idle moment, and no job is lost or done twice."""
    uploads = traces.step_down(300, 60, 20, 120)
    sim, figures = run(params.with_max_workers(40), uploads, Ours())
    line = timeline(sim, 1.0)
    peak = int(line.workers.max())
    late = line.workers[(line.t > 150) & (line.t < 175)]
    assert sim.counts["retirements"] > 0
    assert late.max() < peak / 2
    assert figures["every_job_finished_once"] and figures["unfinished_jobs"] == 0


def test_a_warm_pool_is_filled_before_the_first_upload_and_started_instead_of_launching(params):
    pooled = params.with_stage(warm_pool_size=3)
    _sim, figures = run(pooled, traces.burst(30, within_s=1.0) + 300, Ours())
    assert figures["warm_starts"] >= 1
    # The pool's three were the only launches: the burst started them, launched none.
    assert figures["instances_launched"] - figures["warm_starts"] == 3
    assert figures["p95_s"] < pooled.fleet.cold_start_s


def test_a_policy_that_never_launches_leaves_jobs_unfinished_not_a_hang(params):
    """Target tracking needs more than `target` messages per instance: 3 messages never get one."""
    from sim.policies import AwsTargetTracking

    sim, figures = run(params, np.array([0.0, 1.0, 2.0]), AwsTargetTracking())
    assert figures["unfinished_jobs"] == 3
    assert figures["p50_s"] is None
    assert sim.now == pytest.approx(2.0 + 3600)


def test_every_ask_of_the_scale_up_task_is_counted(params):
    """Each job asks once, a job that found the lease held asks again; every ask reads the lease."""
    policy = Ours()
    sim, _ = run(params, traces.steady(50, 30), policy)
    figures = policy.figures(sim.jobs)
    assert figures["scale_up_invocations"] == sim.jobs + figures["jobs_that_waited_for_the_lease"]
    assert figures["lease_reads"] >= figures["scale_up_invocations"] + figures["scheduled_rounds"]
    assert figures["scale_up_rounds"] <= 30 / params.settings.scale_up_interval_seconds + 2
