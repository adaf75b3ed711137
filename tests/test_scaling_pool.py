"""The warm pool against moto: the scale-up task starts pooled workers before it launches new ones,
starts only those of the launch template's current version, keeps the pool full and within its
size, and never takes the fleet past its cap with them."""

from __future__ import annotations

from typing import Any

import pytest
from control_plane import worker_instances
from test_scaling_task import FakeClock, enqueue

from chalicelib.config import Settings
from chalicelib.contract.fleet_plan import FleetPlanStore
from chalicelib.scaling import Lease, ScaleUp

pytestmark = pytest.mark.control_plane

CAP = 4


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def settings_of(stack: Any, **env: str) -> Settings:
    # A worker drains 10 messages within the objective: 20 messages ask for 2 workers, pooled or
    # new.
    return Settings.from_env(
        {
            **stack.app_environment(),
            "FACEREC_WORKER_PHOTOS_PER_SECOND": "1",
            "FACEREC_DRAIN_OBJECTIVE_SECONDS": "10",
            "FACEREC_POOL_DRAIN_OBJECTIVE_SECONDS": "10",
            "FACEREC_MAX_WORKERS": str(CAP),
            **env,
        }
    )


@pytest.fixture
def plan(local_stack, stack) -> FleetPlanStore:
    return FleetPlanStore(local_stack.table(settings_of(stack).leases_table))


@pytest.fixture
def make_scale_up(local_stack, stack, plan, clock):
    def make(settings: Settings) -> ScaleUp:
        table = local_stack.table(settings.leases_table)
        return ScaleUp(
            local_stack.client("sqs"),
            local_stack.client("ec2"),
            Lease(table, "scale-up", clock),
            plan,
            settings,
        )

    return make


def pooled_workers(
    local_stack, stack, plan: FleetPlanStore, count: int, *, clock: FakeClock
) -> list[str]:
    """Workers launched from the template and stopped into the pool, as leaving workers do."""
    ec2 = local_stack.client("ec2")
    ids = [
        instance["InstanceId"]
        for instance in ec2.run_instances(
            LaunchTemplate={
                "LaunchTemplateName": settings_of(stack).worker_launch_template,
                "Version": "$Default",
            },
            MinCount=count,
            MaxCount=count,
        )["Instances"]
    ]
    for instance_id in ids:
        assert plan.claim_pool_slot(instance_id, int(clock() * 1000), pool_size=count)
    ec2.stop_instances(InstanceIds=ids)
    return ids


def states(local_stack, ids: list[str]) -> dict[str, str]:
    reservations = local_stack.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def test_pooled_workers_are_started_before_any_new_launch(
    local_stack, stack, plan, make_scale_up, clock
):
    pooled = pooled_workers(local_stack, stack, plan, 2, clock=clock)
    enqueue(local_stack, settings_of(stack), 20)
    result = make_scale_up(settings_of(stack)).run({})
    assert (result.started, result.launched) == (2, 0)
    assert set(states(local_stack, pooled).values()) <= {"pending", "running"}
    assert {i["InstanceId"] for i in worker_instances(local_stack, stack)} == set(pooled)
    assert plan.read().pool == {}


def test_pooled_workers_are_started_for_the_shorter_objective_of_the_pool(
    local_stack, stack, plan, make_scale_up, clock
):
    pooled_workers(local_stack, stack, plan, 3, clock=clock)
    enqueue(local_stack, settings_of(stack), 10)
    # One new worker would drain 10 messages within 10 s; pooled ones start within 5 s, so two.
    result = make_scale_up(settings_of(stack, FACEREC_POOL_DRAIN_OBJECTIVE_SECONDS="5")).run({})
    assert (result.started, result.launched) == (2, 0)


def test_beyond_the_pool_new_workers_are_launched(local_stack, stack, plan, make_scale_up, clock):
    pooled = pooled_workers(local_stack, stack, plan, 1, clock=clock)
    enqueue(local_stack, settings_of(stack), 30)
    result = make_scale_up(settings_of(stack)).run({})
    assert (result.started, result.launched) == (1, 2)
    assert pooled[0] in {i["InstanceId"] for i in worker_instances(local_stack, stack)}


def test_the_fleet_cap_holds_with_pooled_workers_counted(
    local_stack, stack, plan, make_scale_up, clock
):
    pooled_workers(local_stack, stack, plan, 3, clock=clock)
    enqueue(local_stack, settings_of(stack), 20)
    assert make_scale_up(settings_of(stack)).run({}).started == 2
    # Two live now; a backlog worth ten more workers may add only two.
    enqueue(local_stack, settings_of(stack), 100)
    clock.advance(1)
    result = make_scale_up(settings_of(stack)).run({})
    assert result.started + result.launched == CAP - 2
    assert len(worker_instances(local_stack, stack)) == CAP


def test_a_pooled_worker_from_an_older_launch_template_version_is_terminated_not_started(
    local_stack, stack, plan, make_scale_up, clock
):
    old = pooled_workers(local_stack, stack, plan, 1, clock=clock)
    ec2 = local_stack.client("ec2")
    name = settings_of(stack).worker_launch_template
    version = ec2.create_launch_template_version(
        LaunchTemplateName=name,
        SourceVersion="$Latest",
        LaunchTemplateData={"InstanceType": "c6i.xlarge"},
    )["LaunchTemplateVersion"]["VersionNumber"]
    ec2.modify_launch_template(LaunchTemplateName=name, DefaultVersion=str(version))
    enqueue(local_stack, settings_of(stack), 5)
    result = make_scale_up(settings_of(stack)).run({})
    assert (result.started, result.launched) == (0, 1)
    assert states(local_stack, old) == {old[0]: "terminated"}
    assert old[0] not in plan.read().pool


def test_the_pool_never_holds_more_than_its_size(local_stack, stack, plan, clock):
    ids = [f"i-{n:017x}" for n in range(5)]
    granted = [plan.claim_pool_slot(i, int(clock() * 1000), pool_size=3) for i in ids]
    assert granted == [True, True, True, False, False]
    assert set(plan.read().pool) == set(ids[:3])


def test_the_round_fills_an_empty_pool_up_to_its_size(local_stack, stack, make_scale_up):
    settings = settings_of(stack, FACEREC_WARM_POOL_SIZE="3")
    result = make_scale_up(settings).run({})
    # No backlog at all: three workers to boot, find nothing to do, and stop into the pool.
    assert (result.desired, result.launched) == (0, 3)


def test_retirements_are_granted_only_up_to_the_surplus_the_plan_leaves(
    plan, make_scale_up, stack, local_stack, clock
):
    enqueue(local_stack, settings_of(stack), 30)
    make_scale_up(settings_of(stack)).run({})
    current = plan.read()
    assert (current.live, current.desired) == (3, 3)
    # Workers that read a plan with one worker to spare: exactly one of them may go.
    spare = len(current.retiring) + 1
    assert [plan.claim_retirement(i, 0, spare) for i in ("i-a", "i-b", "i-c")] == [
        True,
        False,
        False,
    ]
