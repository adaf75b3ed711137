"""Steps the control-plane tests share: create a job, upload its photo, deliver events, watch the
run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests

from chalicelib.contract import STAGE_TAG, WORKER_ROLE_TAG
from chalicelib.scaling import LIVE_STATES
from local_service.lambda_stand_ins import pump_sqs_to_handler

JSON = {"Content-Type": "application/json"}
ADMIN_TOKEN = "s3cret-admin-token-for-tests"
EVENTS = Path(__file__).resolve().parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A real event payload from tests/events/."""
    return json.loads((EVENTS / name).read_text())


def post_json(client: Any, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client.http.post(path, headers={**JSON, **(headers or {})}, body=json.dumps(body))


def create_job(
    client: Any, filename: str = "obama.jpg", content_type: str = "image/jpeg"
) -> dict[str, Any]:
    response = post_json(client, "/jobs", {"filename": filename, "content_type": content_type})
    assert response.status_code == 201, response.body
    return response.json_body


def upload(job: dict[str, Any], data: bytes, content_type: str = "image/jpeg") -> requests.Response:
    """POST the photo with the job's presigned fields, exactly as a browser form would."""
    slot = job["upload"]
    response = requests.post(
        slot["url"], data=slot["fields"], files={"file": ("photo", data, content_type)}, timeout=30
    )
    assert response.status_code in (200, 201, 204), response.text
    return response


def deliver_upload_events(local_stack: Any, stack: Any, app_module: Any) -> int:
    """What Lambda's SQS event source does on AWS: the S3 notifications reach the handler."""
    return pump_sqs_to_handler(
        local_stack.client("sqs"),
        stack.outputs["UploadEventsQueueUrl"],
        app_module.on_upload_events,
        stack.outputs["UploadEventsQueueArn"],
    )


def execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


def wait_for_execution(
    sfn: Any, state_machine_arn: str, job_id: str, timeout: float = 60.0
) -> dict[str, Any]:
    """The execution named after the job, once it has stopped running."""
    arn = execution_arn(state_machine_arn, job_id)
    deadline = time.monotonic() + timeout
    while True:
        execution = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        assert time.monotonic() < deadline, f"execution {arn} still running after {timeout} s"
        time.sleep(0.1)


def job_item(local_stack: Any, stack: Any, job_id: str) -> dict[str, Any]:
    table = local_stack.table(stack.outputs["JobsTableName"])
    return table.get_item(Key={"job_id": job_id}, ConsistentRead=True)["Item"]


def worker_instances(local_stack: Any, stack: Any) -> list[dict[str, Any]]:
    """The stack's live workers in moto's EC2, found by the launch template's tags."""
    ec2 = local_stack.client("ec2")
    role_key, role_value = WORKER_ROLE_TAG
    reservations = ec2.describe_instances(
        Filters=[
            {"Name": f"tag:{role_key}", "Values": [role_value]},
            {"Name": f"tag:{STAGE_TAG}", "Values": [stack.prefix]},
            {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
        ]
    )["Reservations"]
    return [instance for reservation in reservations for instance in reservation["Instances"]]


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        messages.extend(batch)
    return messages
