"""The fleet cap against moto, whatever DescribeInstances lists and however scale-up runs overlap.

The scaler counts workers by their tags, and the lease keeps a ledger of every worker it launched.
A listing that misses the fleet (a wrong FACEREC_STAGE_PREFIX here, a missing tag or lag on AWS)
must not grow the fleet past the cap: that would be a cost runaway.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest
from control_plane import worker_instances
from test_scaling_task import FakeClock, enqueue

from chalicelib.config import Settings
from chalicelib.contract.fleet_plan import FleetPlanStore
from chalicelib.scaling import Lease, ScaleUp

pytestmark = pytest.mark.control_plane

CAP = 4
INTERVAL = 1
LEASE = "scale-up"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(stack) -> Settings:
    env = {
        **stack.app_environment(),
        "FACEREC_WORKER_PHOTOS_PER_SECOND": "1",
        "FACEREC_DRAIN_OBJECTIVE_SECONDS": "10",
        "FACEREC_MAX_WORKERS": str(CAP),
    }
    return Settings.from_env(env)


@pytest.fixture
def blind_settings(settings) -> Settings:
    """A tag filter that lists none of the stack's workers, as a wrong FACEREC_STAGE_PREFIX
    would."""
    return replace(settings, stage_prefix=f"{settings.stage_prefix}-elsewhere")


@pytest.fixture
def lease_table(local_stack, settings):
    return local_stack.table(settings.leases_table)


@pytest.fixture
def make_scale_up(local_stack, lease_table, clock):
    """A scaler on the stack's lease; `ec2` is a client of the test's own, to hook its calls."""

    def make(settings: Settings, ec2: Any | None = None) -> ScaleUp:
        return ScaleUp(
            local_stack.client("sqs"),
            ec2 or local_stack.client("ec2"),
            Lease(lease_table, LEASE, clock),
            FleetPlanStore(lease_table),
            settings,
        )

    return make


@pytest.fixture
def own_ec2(local_stack):
    """An EC2 client of this test's alone: its event hooks leave the shared client untouched."""
    return local_stack.session().client("ec2", endpoint_url=local_stack.endpoint_url)


def overlapping_rounds(
    make_scale_up, settings: Settings, own_ec2, clock: FakeClock, event: str, seconds: float
):
    """A slow round and a later one: at `event` of the slow round's EC2 calls `seconds` pass and
    the later round runs from start to end. Both rounds' results, slow first."""
    later: list[Any] = []

    def run_later(**_: Any) -> None:
        if not later:  # only at the slow round's first such call
            clock.advance(seconds)
            later.append(make_scale_up(settings).run({}))

    own_ec2.meta.events.register(event, run_later)
    return make_scale_up(settings, ec2=own_ec2).run({}), later[0]


def ledger(lease_table) -> dict[str, Any]:
    return lease_table.get_item(Key={"lease_name": LEASE}, ConsistentRead=True)["Item"].get(
        "fleet", {}
    )


def ledger_ids(lease_table) -> set[str]:
    return {instance for entry in ledger(lease_table).values() for instance in entry["ids"]}


def test_a_listing_that_misses_every_worker_never_launches_past_the_cap(
    local_stack, stack, settings, blind_settings, make_scale_up, clock
):
    enqueue(local_stack, settings, 100)  # asks for 10 workers
    scale_up = make_scale_up(blind_settings)
    fleet_sizes = []
    for _ in range(12):  # 6 minutes of rounds, three grace periods
        scale_up.run({})
        fleet_sizes.append(len(worker_instances(local_stack, stack)))
        clock.advance(30)
    assert max(fleet_sizes) == CAP
    assert fleet_sizes[-1] == CAP


def test_workers_the_listing_misses_are_logged_as_an_error(
    local_stack, settings, blind_settings, make_scale_up, clock, caplog
):
    enqueue(local_stack, settings, 100)
    scale_up = make_scale_up(blind_settings)
    assert scale_up.run({}).launched == CAP
    clock.advance(settings.launch_grace_seconds)
    with caplog.at_level(logging.ERROR, logger="chalicelib.scaling.scaler"):
        again = scale_up.run({})
    assert (again.live, again.launched) == (CAP, 0)
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "FACEREC_STAGE_PREFIX" in record.getMessage()
    assert blind_settings.stage_prefix in record.getMessage()


def test_a_round_slower_than_the_interval_keeps_the_lease_until_it_is_over(
    local_stack, stack, settings, make_scale_up, own_ec2, clock
):
    """SQS and EC2 slow under load: rounds must not take each other's lease, or none ever
    launches."""
    enqueue(local_stack, settings, 30)
    slow, later = overlapping_rounds(
        make_scale_up,
        settings,
        own_ec2,
        clock,
        "after-call.ec2.DescribeInstances",
        seconds=3 * INTERVAL,
    )
    assert (later.reason, slow.launched) == ("lease held", 3)
    assert (
        make_scale_up(settings).run({}).reason == "enough workers"
    )  # free once the slow round is over


def test_a_run_whose_lease_was_taken_over_before_it_launched_launches_nothing(
    local_stack, stack, settings, make_scale_up, own_ec2, clock
):
    """A run that outlived its hold (its Lambda timed out, say): a later run takes the lease over
    while the first still counts."""
    enqueue(local_stack, settings, 30)
    slow, later = overlapping_rounds(
        make_scale_up,
        settings,
        own_ec2,
        clock,
        "after-call.ec2.DescribeInstances",
        seconds=settings.scale_up_hold_seconds,
    )
    assert (later.launched, slow.launched, slow.reason) == (3, 0, "lease lost")
    assert len(worker_instances(local_stack, stack)) == 3


def test_a_launch_in_flight_counts_as_live_for_the_next_holder(
    local_stack, stack, settings, make_scale_up, own_ec2, clock
):
    """A run that reserved its launch and is still in RunInstances when its hold runs out."""
    enqueue(local_stack, settings, 30)
    slow, later = overlapping_rounds(
        make_scale_up,
        settings,
        own_ec2,
        clock,
        "before-call.ec2.RunInstances",
        seconds=settings.scale_up_hold_seconds,
    )
    assert (slow.launched, later.live, later.launched) == (3, 3, 0)
    assert len(worker_instances(local_stack, stack)) == 3


def test_terminated_workers_the_listing_misses_leave_the_ledger(
    local_stack, stack, settings, blind_settings, make_scale_up, lease_table, clock
):
    enqueue(local_stack, settings, 100)
    scale_up = make_scale_up(blind_settings)
    assert scale_up.run({}).launched == CAP
    first = {worker["InstanceId"] for worker in worker_instances(local_stack, stack)}
    local_stack.client("ec2").terminate_instances(InstanceIds=sorted(first))
    clock.advance(settings.launch_grace_seconds)
    again = scale_up.run({})
    assert (again.live, again.launched) == (0, CAP)
    assert ledger_ids(lease_table) == {
        worker["InstanceId"] for worker in worker_instances(local_stack, stack)
    }
    assert not first & ledger_ids(lease_table)


def test_a_worker_the_listing_shows_terminated_leaves_the_ledger(
    local_stack, stack, settings, make_scale_up, lease_table, clock
):
    enqueue(local_stack, settings, 1)
    scale_up = make_scale_up(settings)
    assert scale_up.run({}).launched == 1
    (worker,) = worker_instances(local_stack, stack)
    local_stack.client("ec2").terminate_instances(InstanceIds=[worker["InstanceId"]])
    clock.advance(INTERVAL)
    assert scale_up.run({}).launched == 1
    (replacement,) = worker_instances(local_stack, stack)
    assert ledger_ids(lease_table) == {replacement["InstanceId"]}


def test_a_reservation_whose_launch_was_never_recorded_lapses_after_the_grace(
    local_stack, settings, make_scale_up, lease_table, clock
):
    """A run that died between reserving and recording: its reservation holds the cap only so
    long."""
    lease_table.put_item(
        Item={
            "lease_name": LEASE,
            "expires_ms": 0,
            "fleet": {"a-crashed-run": {"at_ms": int(clock() * 1000), "count": 3, "ids": []}},
        }
    )
    enqueue(local_stack, settings, 100)
    scale_up = make_scale_up(settings)
    first = scale_up.run({})
    assert (first.live, first.launched) == (3, 1)
    clock.advance(settings.launch_grace_seconds)
    again = scale_up.run({})
    assert (again.live, again.launched) == (1, 3)
    assert "a-crashed-run" not in ledger(lease_table)


def test_a_listing_that_finds_every_worker_costs_one_describe_call_a_round(
    local_stack, settings, make_scale_up, clock, ec2_calls
):
    enqueue(local_stack, settings, 100)
    scale_up = make_scale_up(settings)
    scale_up.run({})
    clock.advance(settings.launch_grace_seconds)
    before = len(ec2_calls.describe)
    assert scale_up.run({}).live == CAP
    assert len(ec2_calls.describe) - before == 1


def test_a_round_that_changes_nothing_writes_the_lease_only_to_take_it_and_give_it_back(
    local_stack, settings, make_scale_up, lease_table, clock
):
    enqueue(local_stack, settings, 100)
    scale_up = make_scale_up(settings)
    scale_up.run({})
    writes: list[str] = []
    lease_table.meta.client.meta.events.register(
        "before-call.dynamodb.UpdateItem", lambda **_: writes.append("UpdateItem")
    )
    clock.advance(INTERVAL)
    assert scale_up.run({}).launched == 0
    assert writes == ["UpdateItem", "UpdateItem"]


def test_a_lease_from_before_the_ledger_moves_its_launches_into_it(
    local_stack, settings, make_scale_up, lease_table, clock
):
    """Deployed stacks keep a `launches` list of the last launches; the first round carries it
    over."""
    ids = ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"]
    lease_table.put_item(
        Item={
            "lease_name": LEASE,
            "expires_ms": 0,
            "launches": [{"at_ms": int(clock() * 1000) - 5000, "ids": ids}],
        }
    )
    enqueue(local_stack, settings, 20)
    assert make_scale_up(settings).run({}).live == 2
    item = lease_table.get_item(Key={"lease_name": LEASE}, ConsistentRead=True)["Item"]
    assert "launches" not in item
    assert ledger_ids(lease_table) == set(ids)
