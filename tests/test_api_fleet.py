"""GET /admin/fleet against moto: the jobs queue's depth, the live workers, the last hour's jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from control_plane import ADMIN_TOKEN, create_job

pytestmark = pytest.mark.control_plane

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


def fleet(client) -> dict:
    response = client.http.get("/admin/fleet", headers=ADMIN)
    assert response.status_code == 200, response.body
    return response.json_body


def test_the_view_needs_the_admin_token(client, shared_stack):
    assert client.http.get("/admin/fleet").status_code == 401
    assert client.http.get("/admin/fleet", headers={"X-Admin-Token": "wrong"}).status_code == 403


def test_the_view_counts_the_queue_the_workers_and_the_last_hours_jobs(
    client, stack, local_stack, settings_env
):
    settings_env({"FACEREC_FLEET_VIEW_SCAN_SECONDS": "0"})  # a new count at every call
    empty = fleet(client)
    assert empty["queue"] == {
        "visible": 0,
        "in_flight": 0,
        "dead_lettered": 0,
        "upload_events_dead_lettered": 0,
    }
    assert (empty["workers"]["live"], empty["workers"]["instances"]) == (0, [])
    assert set(empty["jobs_last_hour"].values()) == {0}

    sqs, ec2 = local_stack.client("sqs"), local_stack.client("ec2")
    outputs = stack.outputs
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=outputs["JobsQueueUrl"], MessageBody=body)
    sqs.receive_message(
        QueueUrl=outputs["JobsQueueUrl"], MaxNumberOfMessages=1, VisibilityTimeout=300
    )
    sqs.send_message(QueueUrl=outputs["JobsDeadLetterQueueUrl"], MessageBody="dead")
    launched = ec2.run_instances(
        MinCount=2,
        MaxCount=2,
        LaunchTemplate={"LaunchTemplateName": outputs["WorkerLaunchTemplateName"]},
    )["Instances"]
    ec2.terminate_instances(InstanceIds=[launched[1]["InstanceId"]])
    ec2.run_instances(
        MinCount=1, MaxCount=1, ImageId="ami-0123456789abcdef0"
    )  # not a worker: no tags
    create_job(client)
    table = local_stack.table(outputs["JobsTableName"])
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="milliseconds")
    table.put_item(Item={"job_id": "j" * 32, "status": "DONE", "created_at": two_hours_ago})
    table.put_item(
        Item={
            "job_id": "k" * 32,
            "status": "DONE",
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
    )

    view = fleet(client)
    assert view["queue"] == {
        "visible": 1,
        "in_flight": 1,
        "dead_lettered": 1,
        "upload_events_dead_lettered": 0,
    }
    assert view["workers"]["live"] == 1
    assert [i["id"] for i in view["workers"]["instances"]] == [launched[0]["InstanceId"]]
    assert view["jobs_last_hour"] == {
        "AWAITING_UPLOAD": 1,
        "QUEUED": 0,
        "PROCESSING": 0,
        "DONE": 1,
        "FAILED": 0,
    }


def test_one_scan_of_the_jobs_table_serves_the_refreshes_until_it_is_stale(
    client, stack, local_stack
):
    first = fleet(client)
    create_job(client)
    again = fleet(client)
    assert again["jobs_last_hour"] == first["jobs_last_hour"]
    assert again["jobs_counted_at"] == first["jobs_counted_at"]
    assert again["generated_at"] >= first["generated_at"]
