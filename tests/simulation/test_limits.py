"""EC2's token bucket as the simulator enforces it."""

from __future__ import annotations

from sim.ec2 import SimEc2
from sim.limits import RUN_INSTANCES_REQUESTS, TokenBucket
from sim.params import FleetModel


def test_a_burst_of_five_then_two_a_second():
    bucket = TokenBucket(RUN_INSTANCES_REQUESTS)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert all(bucket.take(1.0 + i * 0.5) for i in range(20))


def test_a_throttled_run_instances_launches_nothing():
    launched = []
    ec2 = SimEc2(FleetModel(), clock=lambda: 0.0, on_launch=launched.append)
    results = [ec2.run(0.0, 2) for _ in range(6)]
    assert results[5] is None
    assert len(launched) == 10
    assert ec2.calls["run_instances"] == 6 and ec2.calls["run_instances_throttled"] == 1


def test_describe_lists_an_instance_after_the_lag_and_keeps_it_once_terminated():
    ec2 = SimEc2(FleetModel(describe_lag_s=2.0), clock=lambda: 0.0, on_launch=lambda _: None)
    (instance,) = ec2.run(10.0, 1)
    assert ec2.describe(11.0) == {}
    assert ec2.describe(12.0) == {instance.instance_id: "running"}
    ec2.terminate(instance, 13.0)
    assert ec2.describe(14.0) == {instance.instance_id: "terminated"}
    assert ec2.live_count() == 0


def test_a_stopped_instance_starts_again_as_a_new_billed_run_after_the_warm_start():
    ec2 = SimEc2(
        FleetModel(warm_start_s=8.0, describe_lag_s=0.0),
        clock=lambda: 0.0,
        on_launch=lambda _: None,
    )
    (first,) = ec2.run(0.0, 1)
    ec2.stop(first, 100.0)
    assert ec2.describe(101.0) == {first.instance_id: "stopped"} and ec2.live_count() == 0
    (second,) = ec2.start(200.0, [first.instance_id])
    assert (second.instance_id, second.launched_s, second.ready_s, second.warm) == (
        first.instance_id,
        200.0,
        208.0,
        True,
    )
    assert ec2.describe(201.0) == {first.instance_id: "running"}
    assert [run.ended_s for run in ec2.instances] == [100.0, None]
