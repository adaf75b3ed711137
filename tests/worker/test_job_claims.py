"""Who may take a job that another worker holds: the evidence is the holder's own message coming
back."""

from __future__ import annotations

import pytest

from chalicelib.contract import JobStatus
from facerec_worker.ledger import Claim, JobLedger
from facerec_worker.metrics import MetricsPublisher

STALE_AFTER = 120.0


@pytest.fixture
def jobs_table(local_stack, stack):
    resource = local_stack.session().resource("dynamodb", endpoint_url=local_stack.endpoint_url)
    table = resource.Table(stack.outputs["JobsTableName"])
    table.put_item(
        Item={
            "job_id": "job-held-by-the-first-worker",
            "kind": "recognize",
            "status": JobStatus.QUEUED.value,
        }
    )
    return table


def ledger(table, worker: str, now: float = 1_000.0) -> JobLedger:
    # Nothing here flushes the metrics.
    return JobLedger(
        table, worker_id=worker, metrics=MetricsPublisher("facerec-test"), clock=lambda: now
    )


def test_a_redelivery_of_the_holders_message_takes_the_job_over(jobs_table):
    first, second = ledger(jobs_table, "i-first"), ledger(jobs_table, "i-second", now=1_005.0)
    assert (
        first.claim(
            "job-held-by-the-first-worker",
            message_id="m-1",
            receive_count=1,
            stale_after_seconds=STALE_AFTER,
        )
        is Claim.TAKEN
    )

    claim = second.claim(
        "job-held-by-the-first-worker",
        message_id="m-1",
        receive_count=2,
        stale_after_seconds=STALE_AFTER,
    )

    assert claim is Claim.TAKEN
    assert (
        jobs_table.get_item(Key={"job_id": "job-held-by-the-first-worker"})["Item"]["worker_id"]
        == "i-second"
    )


def test_another_message_of_a_held_job_leaves_it_with_its_live_holder(jobs_table):
    first, second = ledger(jobs_table, "i-first"), ledger(jobs_table, "i-second", now=1_005.0)
    first.claim(
        "job-held-by-the-first-worker",
        message_id="m-1",
        receive_count=1,
        stale_after_seconds=STALE_AFTER,
    )

    # The job enqueued twice: the second message says nothing about whether the holder lives.
    claim = second.claim(
        "job-held-by-the-first-worker",
        message_id="m-2",
        receive_count=1,
        stale_after_seconds=STALE_AFTER,
    )

    assert claim is Claim.BUSY


def test_a_claim_older_than_the_stale_age_is_taken_over_by_any_message(jobs_table):
    first = ledger(jobs_table, "i-first")
    second = ledger(jobs_table, "i-second", now=1_000.0 + STALE_AFTER + 1)
    first.claim(
        "job-held-by-the-first-worker",
        message_id="m-1",
        receive_count=1,
        stale_after_seconds=STALE_AFTER,
    )

    claim = second.claim(
        "job-held-by-the-first-worker",
        message_id="m-2",
        receive_count=1,
        stale_after_seconds=STALE_AFTER,
    )

    assert claim is Claim.TAKEN


def test_a_finished_job_is_never_taken_again(jobs_table):
    first, second = ledger(jobs_table, "i-first"), ledger(jobs_table, "i-second", now=1_005.0)
    first.claim(
        "job-held-by-the-first-worker",
        message_id="m-1",
        receive_count=1,
        stale_after_seconds=STALE_AFTER,
    )
    first.done("job-held-by-the-first-worker", result_key="results/x.json", summary={"faces": 0})

    claim = second.claim(
        "job-held-by-the-first-worker",
        message_id="m-1",
        receive_count=2,
        stale_after_seconds=STALE_AFTER,
    )

    assert claim is Claim.FINISHED
