"""Upload to queued-and-scaling, end to end: the API, S3, the event handler, the real workflow,
EC2."""

from __future__ import annotations

import pytest
from control_plane import (
    ADMIN_TOKEN,
    create_job,
    deliver_upload_events,
    job_item,
    post_json,
    receive_all,
    upload,
    wait_for_execution,
    worker_instances,
)

from chalicelib.contract import JobKind, JobMessage, JobStatus, upload_key

pytestmark = pytest.mark.control_plane


def test_an_upload_queues_the_job_and_launches_a_worker(
    local_stack, stack, workflow, client, app_module, jpeg_bytes
):
    job = create_job(client, filename="obama.jpg")
    upload(job, jpeg_bytes)

    assert deliver_upload_events(local_stack, stack, app_module) >= 1
    execution = wait_for_execution(workflow.sfn, workflow.state_machine_arn, job["job_id"])

    assert execution["status"] == "SUCCEEDED", execution
    item = job_item(local_stack, stack, job["job_id"])
    assert item["status"] == JobStatus.QUEUED.value
    messages = receive_all(local_stack.client("sqs"), stack.outputs["JobsQueueUrl"])
    assert [JobMessage.from_json(m["Body"]) for m in messages] == [
        JobMessage(
            job_id=job["job_id"],
            kind=JobKind.RECOGNIZE,
            bucket=stack.outputs["InputBucketName"],
            key=upload_key(job["job_id"], "obama.jpg"),
        )
    ]
    workers = worker_instances(local_stack, stack)
    assert len(workers) == 1
    tags = {tag["Key"]: tag["Value"] for tag in workers[0]["Tags"]}
    assert tags["aws:ec2launchtemplate:id"] == stack.outputs["WorkerLaunchTemplateId"]
    assert tags["facerec:stage"] == stack.prefix
    assert workers[0]["ImageId"] == "ami-0123456789abcdef0"


def test_an_enrollment_photo_reaches_the_queue_with_its_person(
    local_stack, stack, client, app_module, jpeg_bytes
):
    headers = {"X-Admin-Token": ADMIN_TOKEN}
    assert post_json(client, "/people", {"person_id": "obama"}, headers=headers).status_code == 201
    job = post_json(
        client, "/people/obama/photos", {"filename": "o1.jpg"}, headers=headers
    ).json_body
    upload(job, jpeg_bytes)
    deliver_upload_events(local_stack, stack, app_module)

    execution = wait_for_execution(
        local_stack.client("stepfunctions"), stack.outputs["StateMachineArn"], job["job_id"]
    )
    assert execution["status"] == "SUCCEEDED"
    (message,) = receive_all(local_stack.client("sqs"), stack.outputs["JobsQueueUrl"])
    assert JobMessage.from_json(message["Body"]) == JobMessage(
        job_id=job["job_id"],
        kind=JobKind.ENROLL,
        bucket=stack.outputs["InputBucketName"],
        key=upload_key(job["job_id"], "o1.jpg"),
        person="obama",
    )
