"""The scale-up task against moto: one round per lease interval, however many runs, and no double
launch."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from control_plane import worker_instances

from chalicelib.config import Settings
from chalicelib.contract.fleet_plan import FleetPlanStore
from chalicelib.scaling import Lease, ScaleUp

pytestmark = pytest.mark.control_plane

INTERVAL = 1


class FakeClock:
    """A clock the test moves by hand, for the lease's expiry."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(stack) -> Settings:
    env = {
        **stack.app_environment(),
        "FACEREC_WORKER_PHOTOS_PER_SECOND": "5",
        "FACEREC_DRAIN_OBJECTIVE_SECONDS": "10",
        "FACEREC_MAX_WORKERS": "6",
    }
    return Settings.from_env(env)


@pytest.fixture
def lease_table(local_stack, settings):
    return local_stack.table(settings.leases_table)


@pytest.fixture
def scale_up(local_stack, settings, lease_table, clock) -> ScaleUp:
    return ScaleUp(
        local_stack.client("sqs"),
        local_stack.client("ec2"),
        Lease(lease_table, "scale-up", clock),
        FleetPlanStore(lease_table),
        settings,
    )


def enqueue(local_stack, settings: Settings, count: int) -> None:
    sqs = local_stack.client("sqs")
    for start in range(0, count, 10):
        entries = [{"Id": str(i), "MessageBody": "{}"} for i in range(min(10, count - start))]
        sqs.send_message_batch(QueueUrl=settings.jobs_queue_url, Entries=entries)


def test_concurrent_runs_make_one_round_of_ec2_calls(
    local_stack, stack, settings, scale_up, ec2_calls
):
    enqueue(local_stack, settings, 120)
    barrier = threading.Barrier(24)

    def run(_: int):
        barrier.wait()
        return scale_up.run({})

    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(run, range(24)))

    holders = [r for r in results if r.covered]
    assert len(holders) == 1
    assert (holders[0].backlog, holders[0].desired, holders[0].launched) == (120, 3, 3)
    assert all(
        r.reason == "lease held" and r.retry_in_seconds == INTERVAL
        for r in results
        if not r.covered
    )
    assert (len(ec2_calls.run), len(ec2_calls.describe)) == (1, 1)
    assert len(worker_instances(local_stack, stack)) == 3


def test_a_second_attempt_is_covered_by_the_holder_without_calling_ec2(
    local_stack, settings, scale_up, ec2_calls
):
    enqueue(local_stack, settings, 1)
    first = scale_up.run({})
    again = scale_up.run({"scale_up": {"covered": False, "retry_in_seconds": INTERVAL}})
    assert first.covered and first.launched == 1
    assert again.covered and again.reason == "lease held"
    assert len(ec2_calls.run) == 1


def test_the_next_interval_tops_the_fleet_up(local_stack, stack, settings, scale_up, clock):
    enqueue(local_stack, settings, 60)
    assert scale_up.run({}).launched == 2
    enqueue(local_stack, settings, 100)
    clock.advance(INTERVAL / 2)
    assert scale_up.run({}).reason == "lease held"
    clock.advance(INTERVAL / 2)
    topped_up = scale_up.run({})
    assert (topped_up.backlog, topped_up.live, topped_up.launched) == (160, 2, 2)
    enqueue(local_stack, settings, 200)
    clock.advance(INTERVAL)
    capped = scale_up.run({})
    assert (capped.desired, capped.launched) == (6, 2)
    assert len(worker_instances(local_stack, stack)) == 6


def test_launches_ec2_does_not_list_yet_count_as_live(
    local_stack, stack, settings, scale_up, lease_table, clock
):
    """DescribeInstances lags RunInstances on AWS: the lease remembers what the last holders
    launched."""
    lease_table.put_item(
        Item={
            "lease_name": "scale-up",
            "expires_ms": 0,
            "launches": [
                {
                    "at_ms": int(clock() * 1000) - 5000,
                    "ids": ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"],
                }
            ],
        }
    )
    enqueue(local_stack, settings, 100)
    assert (scale_up.run({}).live, worker_instances(local_stack, stack)) == (2, [])
    clock.advance(settings.launch_grace_seconds)
    assert scale_up.run({}).launched == 2


def test_a_worker_that_stopped_itself_is_replaced_at_once(
    local_stack, stack, settings, scale_up, clock
):
    """Workers terminate themselves when idle; a recent launch EC2 lists as terminated is not
    live."""
    enqueue(local_stack, settings, 1)
    assert scale_up.run({}).launched == 1
    (worker,) = worker_instances(local_stack, stack)
    local_stack.client("ec2").terminate_instances(InstanceIds=[worker["InstanceId"]])
    clock.advance(INTERVAL)
    again = scale_up.run({})
    assert (again.live, again.launched) == (0, 1)


def test_no_backlog_launches_nothing(local_stack, stack, scale_up, ec2_calls):
    result = scale_up.run({})
    assert (result.covered, result.backlog, result.launched) == (True, 0, 0)
    assert ec2_calls.run == []


def test_the_minute_schedule_scales_up_queued_jobs(local_stack, stack, client):
    """No upload arrives to scale up for jobs a vanished worker left behind: the schedule does."""
    local_stack.client("sqs").send_message(QueueUrl=stack.outputs["JobsQueueUrl"], MessageBody="{}")
    event = client.events.generate_cw_event(
        source="aws.events",
        detail_type="Scheduled Event",
        detail={},
        resources=["arn:aws:events:us-east-1:123456789012:rule/x"],
    )
    client.lambda_.invoke("scale_up_every_minute", event)
    assert len(worker_instances(local_stack, stack)) == 1
