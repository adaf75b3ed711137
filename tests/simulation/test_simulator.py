"""The simulator's invariants on small traces, under every policy."""

from __future__ import annotations

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


@pytest.mark.parametrize("policy_class", POLICIES, ids=lambda p: p.name)
def test_the_fleet_returns_to_zero_after_the_idle_time(params, policy_class):
    sim, figures = run(params, traces.burst(100, within_s=1.0), policy_class())
    worker = params.worker
    assert figures["fleet_returned_to_zero"]
    assert all(i.ended_s is not None for i in sim.ec2.instances)
    # The first empty long poll starts the idle time; the end comes on a later empty poll.
    assert worker.idle_s <= figures["back_to_zero_s"] <= worker.idle_s + 2 * worker.poll_wait_s + 40


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
    """desired_workers: one worker per target_backlog_per_worker messages, rounded up."""
    from dataclasses import replace

    burst = traces.burst(100, within_s=1.0)
    _, default = run(params, burst, Ours())
    _, eager = run(replace(params, settings=replace(params.settings, target_backlog_per_worker=10)), burst, Ours())
    assert default["peak_workers"] == 2  # 100 messages / 50
    assert eager["peak_workers"] == 10


def test_a_worker_ends_itself_only_when_the_queue_is_empty(params):
    """Uploads every 30 s keep one worker busy enough never to be idle for 120 s."""
    uploads = np.arange(0.0, 600.0, 30.0)
    sim, figures = run(params, uploads, Ours())
    assert figures["instances_launched"] == 1
    assert sim.ec2.instances[0].ended_s > uploads[-1]


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
    assert figures["lease_reads"] == figures["scale_up_invocations"] + figures["scheduled_rounds"]
    assert figures["scale_up_rounds"] <= 30 / params.settings.scale_up_interval_seconds + 2
