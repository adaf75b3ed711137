"""500 uploads at once: EC2 sees a handful of calls within its rate limits, and the fleet stays
capped.

EC2 throttles RunInstances with a token bucket (a burst of 5, refilled at 2 a second) and
DescribeInstances with a larger one; the scale-up task runs once per job, so only its lease
keeps it within those limits. Calls are counted in moto's EC2 backend, where every call lands.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from control_plane import create_job, deliver_upload_events, execution_arn, upload, worker_instances

from local_service.stack import scale_up_function_name

pytestmark = pytest.mark.control_plane

UPLOADS = 500
# A worker drains 50 messages within the objective (5 photos/s for 10 s).
WORKER_PHOTOS_PER_SECOND, DRAIN_OBJECTIVE_SECONDS = 5, 10
MAX_WORKERS = 8  # below the 10 workers 500 messages ask for, so the cap is what stops the fleet


def fits_token_bucket(times: list[float], capacity: float, rate: float) -> bool:
    """Whether calls at these times would all pass a token bucket of this size and refill rate."""
    tokens, last = capacity, None
    for moment in sorted(times):
        if last is not None:
            tokens = min(capacity, tokens + (moment - last) * rate)
        last = moment
        tokens -= 1
        if tokens < 0:
            return False
    return True


@pytest.mark.parametrize(
    ("times", "fits"),
    [
        ([0, 0, 0, 0, 0], True),
        ([0, 0, 0, 0, 0, 0], False),
        ([0, 0, 0, 0, 0, 0.5], True),
        ([i * 0.5 for i in range(100)], True),
        ([i * 0.4 for i in range(100)], False),
    ],
)
def test_the_token_bucket_model(times, fits):
    assert fits_token_bucket(times, capacity=5, rate=2) is fits


@pytest.fixture
def lease_writes(monkeypatch, stack) -> list[float]:
    """Times of the writes to this stack's leases table: one DynamoDB item takes ~1000 a second."""
    from moto.dynamodb.models import DynamoDBBackend

    writes: list[float] = []
    update_item = DynamoDBBackend.update_item

    def counting(self, table_name, *args, **kwargs):
        if table_name == stack.outputs["LeasesTableName"]:
            writes.append(time.monotonic())
        return update_item(self, table_name, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "update_item", counting)
    return writes


@pytest.fixture
def scale_up_invocations(local_stack, stack, app_module) -> list[dict]:
    """Every answer of the scale-up function to the workflow."""
    answers: list[dict] = []

    def counting(event, context):
        answer = app_module.scale_up(event, context)
        answers.append(answer)
        return answer

    local_stack.router.register(scale_up_function_name(stack.prefix), counting)
    return answers


@pytest.mark.slow
def test_a_burst_of_uploads_stays_within_ec2_limits_and_the_fleet_cap(
    local_stack,
    stack,
    client,
    app_module,
    settings_env,
    jpeg_bytes,
    ec2_calls,
    lease_writes,
    scale_up_invocations,
):
    settings_env(
        {
            "FACEREC_WORKER_PHOTOS_PER_SECOND": str(WORKER_PHOTOS_PER_SECOND),
            "FACEREC_DRAIN_OBJECTIVE_SECONDS": str(DRAIN_OBJECTIVE_SECONDS),
            "FACEREC_MAX_WORKERS": str(MAX_WORKERS),
        }
    )
    jobs = [create_job(client, filename=f"photo-{i:03d}.jpg") for i in range(UPLOADS)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda job: upload(job, jpeg_bytes), jobs))
    assert deliver_upload_events(local_stack, stack, app_module) >= UPLOADS

    sfn = local_stack.client("stepfunctions")
    pending = {execution_arn(stack.outputs["StateMachineArn"], job["job_id"]) for job in jobs}
    statuses: dict[str, int] = {}
    deadline = time.monotonic() + 240
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} executions still running"
        for arn in list(pending):
            status = sfn.describe_execution(executionArn=arn)["status"]
            if status != "RUNNING":
                statuses[status] = statuses.get(status, 0) + 1
                pending.discard(arn)
        time.sleep(0.5)
    elapsed = time.monotonic() - started

    runs, describes = ec2_calls.run, ec2_calls.describe
    report = {
        "uploads": UPLOADS,
        "seconds": round(elapsed, 1),
        "executions": statuses,
        "run_instances_calls": len(runs),
        "describe_instances_calls": len(describes),
        "workers": len(worker_instances(local_stack, stack)),
        "scale_up_invocations": len(scale_up_invocations),
        "scale_up_rounds": sum(1 for a in scale_up_invocations if a["reason"] != "lease held"),
        "lease_writes": len(lease_writes),
        "fleet_after_each_run": ec2_calls.fleet_sizes(stack.prefix),
    }
    print("burst:", json.dumps(report))
    assert statuses == {"SUCCEEDED": UPLOADS}
    assert fits_token_bucket(runs, capacity=5, rate=2)
    # One scale-up round per one-second lease: well inside DescribeInstances' 20/s refill.
    assert fits_token_bucket(describes, capacity=5, rate=2)
    assert len(runs) <= math.ceil(elapsed) + 1
    assert max(ec2_calls.fleet_sizes(stack.prefix)) <= MAX_WORKERS
    assert report["workers"] == MAX_WORKERS
    # At most two invocations a job (the second always covered), and writes to the lease only
    # from the runs that found it expired: about one per interval, never one per invocation.
    assert len(scale_up_invocations) <= 2 * UPLOADS
    assert len(lease_writes) <= 3 * (math.ceil(elapsed) + 1)
