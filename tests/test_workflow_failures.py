"""Inside the workflow: an AWS call that fails before the job is on the queue ends it FAILED with
its cause, a scale-up that fails after leaves it queued for the schedule; duplicates change
nothing."""

from __future__ import annotations

import json

import pytest
from control_plane import (
    create_job,
    deliver_upload_events,
    job_item,
    post_json,
    receive_all,
    upload,
    wait_for_execution,
)

from chalicelib.contract import JobMessage
from chalicelib.failures import client_failure
from local_service.stack import scale_up_function_name

pytestmark = pytest.mark.control_plane

LEFT_TO_THE_SCHEDULE = "Job is queued, its workers left to the schedule"


def run_one_upload(local_stack, stack, client, app_module, jpeg_bytes) -> tuple[dict, dict]:
    job = create_job(client)
    upload(job, jpeg_bytes)
    deliver_upload_events(local_stack, stack, app_module)
    execution = wait_for_execution(
        local_stack.client("stepfunctions"), stack.outputs["StateMachineArn"], job["job_id"]
    )
    return job, execution


def test_a_failing_sqs_call_fails_the_job_with_its_cause(
    local_stack, stack, client, app_module, jpeg_bytes
):
    local_stack.client("sqs").delete_queue(QueueUrl=stack.outputs["JobsQueueUrl"])
    job, execution = run_one_upload(local_stack, stack, client, app_module, jpeg_bytes)

    assert execution["status"] == "FAILED"
    item = job_item(local_stack, stack, job["job_id"])
    assert item["status"] == "FAILED"
    assert item["error"] == "SQS.SdkClientException"
    assert "queue" in item["cause"].lower()
    status = client.http.get(job["status_url"]).json_body
    # The client is told the job failed in a sentence; the queue's error stays in the record.
    assert (status["error"], status["message"]) == ("job_failed", client_failure(None)["message"])


def states_entered(local_stack, execution: dict) -> list[str]:
    history = local_stack.client("stepfunctions").get_execution_history(
        executionArn=execution["executionArn"]
    )["events"]
    return [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]


def queued_job_ids(local_stack, stack) -> list[str]:
    return [
        JobMessage.from_json(m["Body"]).job_id
        for m in receive_all(local_stack.client("sqs"), stack.outputs["JobsQueueUrl"])
    ]


def test_a_failing_scale_up_leaves_the_queued_job_to_the_schedule(
    local_stack, stack, client, app_module, jpeg_bytes
):
    """One RequestLimitExceeded in a burst must not fail the uploads whose messages were sent:
    scale_up_every_minute launches their workers."""
    local_stack.client("ec2").delete_launch_template(
        LaunchTemplateName=stack.outputs["WorkerLaunchTemplateName"]
    )
    job, execution = run_one_upload(local_stack, stack, client, app_module, jpeg_bytes)

    assert execution["status"] == "SUCCEEDED", execution
    assert states_entered(local_stack, execution)[-2:] == [
        "Launch workers if needed",
        LEFT_TO_THE_SCHEDULE,
    ]
    failure = json.loads(execution["output"])["scale_up_failure"]
    assert (
        failure["Error"] == "ScalingError"
        and "could not launch 1 workers" in json.loads(failure["Cause"])["errorMessage"]
    )
    item = job_item(local_stack, stack, job["job_id"])
    assert item["status"] == "QUEUED" and "error" not in item
    assert queued_job_ids(local_stack, stack) == [job["job_id"]]


def test_a_failing_scale_up_leaves_a_sent_batch_queued(
    local_stack, stack, client, app_module, jpeg_bytes
):
    local_stack.client("ec2").delete_launch_template(
        LaunchTemplateName=stack.outputs["WorkerLaunchTemplateName"]
    )
    batch = post_json(
        client, "/batches", {"photos": [{"filename": "a.jpg", "content_type": "image/jpeg"}] * 2}
    ).json_body
    for photo in batch["photos"]:
        upload(photo, jpeg_bytes)
    assert client.http.post(batch["start_url"]).status_code == 202
    execution = wait_for_execution(
        local_stack.client("stepfunctions"), stack.outputs["StateMachineArn"], batch["batch_id"]
    )

    assert execution["status"] == "SUCCEEDED", execution
    assert states_entered(local_stack, execution)[-1] == LEFT_TO_THE_SCHEDULE
    assert job_item(local_stack, stack, batch["batch_id"])["status"] == "QUEUED"
    assert sorted(queued_job_ids(local_stack, stack)) == sorted(
        photo["job_id"] for photo in batch["photos"]
    )


def test_a_duplicate_execution_for_a_queued_job_changes_nothing(
    local_stack, stack, client, app_module, jpeg_bytes
):
    """Express workflows run at least once: a second run for the job must not enqueue it again."""
    job, first = run_one_upload(local_stack, stack, client, app_module, jpeg_bytes)
    sfn = local_stack.client("stepfunctions")
    sfn.start_execution(
        stateMachineArn=stack.outputs["StateMachineArn"],
        name=job["job_id"] + "-again",
        input=first["input"],
    )
    again = wait_for_execution(sfn, stack.outputs["StateMachineArn"], job["job_id"] + "-again")

    assert (first["status"], again["status"]) == ("SUCCEEDED", "SUCCEEDED")
    history = sfn.get_execution_history(executionArn=again["executionArn"])["events"]
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]
    assert entered == ["Record job as queued", "Job was queued already"]
    assert len(receive_all(local_stack.client("sqs"), stack.outputs["JobsQueueUrl"])) == 1
    assert job_item(local_stack, stack, job["job_id"])["status"] == "QUEUED"


def test_a_job_a_worker_took_is_not_failed_by_the_workflow(
    local_stack, stack, client, app_module, jpeg_bytes
):
    """A worker that marked the job PROCESSING owns its outcome, even when scale-up fails
    afterwards."""
    table = local_stack.table(stack.outputs["JobsTableName"])

    def worker_takes_the_job_then_scale_up_runs(event, context):
        table.update_item(
            Key={"job_id": event["job_id"]},
            UpdateExpression="SET #s = :p",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":p": "PROCESSING"},
        )
        return app_module.scale_up(event, context)

    local_stack.router.register(
        scale_up_function_name(stack.prefix), worker_takes_the_job_then_scale_up_runs
    )
    local_stack.client("ec2").delete_launch_template(
        LaunchTemplateName=stack.outputs["WorkerLaunchTemplateName"]
    )
    job, execution = run_one_upload(local_stack, stack, client, app_module, jpeg_bytes)

    assert execution["status"] == "SUCCEEDED"
    item = job_item(local_stack, stack, job["job_id"])
    assert item["status"] == "PROCESSING" and "error" not in item
