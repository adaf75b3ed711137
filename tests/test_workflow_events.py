"""From S3's notification to one execution per job, and every way an upload event is refused."""

from __future__ import annotations

import json
import time

import pytest
from control_plane import (
    create_job,
    deliver_upload_events,
    job_item,
    load_event,
    receive_all,
    upload,
    wait_for_execution,
)

from chalicelib.events import UploadedObject, UploadOutcome, iter_uploaded_objects
from chalicelib.exceptions import WorkflowError
from chalicelib.failures import FAILURE_MESSAGES
from chalicelib.services import get_services
from chalicelib.workflow import WorkflowStarter

pytestmark = pytest.mark.control_plane


def test_notifications_are_parsed_as_s3_sends_them():
    created = list(iter_uploaded_objects(json.dumps(load_event("s3_object_created.json"))))
    assert created == [
        UploadedObject(
            "facerec-dev-input", "uploads/Zq3xY7mN2pL9vB4cD8fG1hJ6kR0sT5wU/my holiday(photo).jpg"
        )
    ]
    assert list(iter_uploaded_objects(json.dumps(load_event("s3_test_event.json")))) == []


def executions(local_stack, stack) -> list[dict]:
    return local_stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.outputs["StateMachineArn"]
    )["executions"]


def test_a_duplicate_s3_event_starts_nothing_new(
    local_stack, stack, client, app_module, jpeg_bytes
):
    job = create_job(client)
    upload(job, jpeg_bytes)
    sqs = local_stack.client("sqs")
    queue = stack.outputs["UploadEventsQueueUrl"]
    notifications = [m["Body"] for m in receive_all(sqs, queue)]
    for body in notifications + notifications:  # S3 delivers at least once: here, twice
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    deliver_upload_events(local_stack, stack, app_module)

    assert [e["name"] for e in executions(local_stack, stack)] == [job["job_id"]]
    wait_for_execution(
        local_stack.client("stepfunctions"), stack.outputs["StateMachineArn"], job["job_id"]
    )
    assert len(receive_all(sqs, stack.outputs["JobsQueueUrl"])) == 1


def test_a_finished_execution_is_not_started_again_under_its_name(local_stack, stack):
    """On a Standard workflow the execution name is a second line of dedup; ExecutionAlreadyExists
    is not an error."""
    sfn = local_stack.client("stepfunctions")
    starter = WorkflowStarter(sfn, stack.outputs["StateMachineArn"])
    name, execution_input = (
        "N" * 32,
        {"job_id": "N" * 32, "kind": "recognize", "message_body": "{}"},
    )
    assert starter.start(name, execution_input) is True
    wait_for_execution(sfn, stack.outputs["StateMachineArn"], name)
    assert starter.start(name, execution_input) is False
    assert [e["name"] for e in executions(local_stack, stack)] == [name]


def test_objects_outside_uploads_never_reach_the_workflow(
    local_stack, stack, client, app_module, jpeg_bytes
):
    s3 = local_stack.client("s3")
    s3.put_object(Bucket=stack.outputs["InputBucketName"], Key="other/photo.jpg", Body=jpeg_bytes)
    deliver_upload_events(local_stack, stack, app_module)  # only S3's test event: the filter holds
    handler = get_services().upload_events
    bucket = stack.outputs["InputBucketName"]
    assert handler.handle(UploadedObject(bucket, "other/photo.jpg")) is UploadOutcome.IGNORED
    assert (
        handler.handle(UploadedObject("another-bucket", "uploads/" + "a" * 32 + "/p.jpg"))
        is UploadOutcome.IGNORED
    )
    assert executions(local_stack, stack) == []


def test_an_upload_for_an_unknown_job_starts_nothing(local_stack, stack, app_module, jpeg_bytes):
    local_stack.client("s3").put_object(
        Bucket=stack.outputs["InputBucketName"],
        Key="uploads/" + "Q" * 32 + "/p.jpg",
        Body=jpeg_bytes,
        ContentType="image/jpeg",
    )
    deliver_upload_events(local_stack, stack, app_module)
    assert executions(local_stack, stack) == []


def _set_expiry(local_stack, stack, job_id: str, epoch: int) -> None:
    local_stack.table(stack.outputs["JobsTableName"]).update_item(
        Key={"job_id": job_id},
        UpdateExpression="SET upload_expires_epoch = :e",
        ExpressionAttributeValues={":e": epoch},
    )


@pytest.mark.parametrize(
    ("case", "code", "cause"),
    [
        ("oversized", "upload_too_large", "over the 2000-byte limit"),
        (
            "wrong type",
            "wrong_content_type",
            "content type 'text/plain' is not an accepted image type",
        ),
        (
            "other image type",
            "wrong_content_type",
            "content type 'image/png' differs from the 'image/jpeg' requested",
        ),
        ("expired", "upload_expired", "arrived after its upload slot expired"),
    ],
)
def test_refused_uploads_fail_the_job_without_a_workflow(
    local_stack, stack, client, app_module, settings_env, jpeg_bytes, case, code, cause
):
    """On AWS S3 enforces the presigned policy; moto does not, so the handler's own check is what
    holds here."""
    settings_env({"FACEREC_MAX_UPLOAD_BYTES": "2000"})
    job = create_job(client)
    data, content_type = jpeg_bytes[:1500], "image/jpeg"
    if case == "oversized":
        data = jpeg_bytes + b"\0" * 2000
    elif case == "wrong type":
        job["upload"]["fields"]["Content-Type"] = content_type = "text/plain"
    elif case == "other image type":
        job["upload"]["fields"]["Content-Type"] = content_type = "image/png"
    elif case == "expired":
        _set_expiry(local_stack, stack, job["job_id"], int(time.time()) - 60)
    upload(job, data, content_type)
    deliver_upload_events(local_stack, stack, app_module)

    status = client.http.get(job["status_url"]).json_body
    assert status["status"] == "FAILED"
    assert (status["error"], status["message"]) == (code, FAILURE_MESSAGES[code])
    assert cause in job_item(local_stack, stack, job["job_id"])["cause"]
    assert executions(local_stack, stack) == []


def test_when_start_execution_fails_the_event_is_delivered_again(
    local_stack, stack, client, app_module, settings_env, jpeg_bytes
):
    job = create_job(client)
    upload(job, jpeg_bytes)
    good_arn = stack.outputs["StateMachineArn"]
    settings_env({"FACEREC_STATE_MACHINE_ARN": good_arn + "-missing"})
    with pytest.raises(WorkflowError):
        deliver_upload_events(local_stack, stack, app_module)
    item = job_item(local_stack, stack, job["job_id"])
    assert item["status"] == "AWAITING_UPLOAD" and "upload_claimed_epoch" not in item

    settings_env({"FACEREC_STATE_MACHINE_ARN": good_arn})
    deliver_upload_events(local_stack, stack, app_module)
    assert (
        wait_for_execution(local_stack.client("stepfunctions"), good_arn, job["job_id"])["status"]
        == "SUCCEEDED"
    )
