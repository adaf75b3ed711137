"""Batches through the API and the real workflow: one execution per batch, a message per photo,
every photo's status in one answer, and a poll that finds nothing new answered with a 304."""

from __future__ import annotations

import json

import pytest
from control_plane import ADMIN_TOKEN, job_item, post_json, receive_all, upload, wait_for_execution

from chalicelib.contract import JobKind, JobMessage, JobStatus, batch_upload_key

pytestmark = pytest.mark.control_plane


def create_batch(client, names: list[str]) -> dict:
    response = post_json(
        client,
        "/batches",
        {"photos": [{"filename": name, "content_type": "image/jpeg"} for name in names]},
    )
    assert response.status_code == 201, response.body
    return response.json_body


def start(client, batch: dict):
    return client.http.post(batch["start_url"])


def test_a_batch_hands_out_one_upload_slot_per_photo_in_order(client, shared_stack):
    batch = create_batch(client, ["a.jpg", "b.jpg", "a.jpg"])

    assert (batch["status"], batch["final"]) == ("AWAITING_UPLOAD", False)
    assert [p["index"] for p in batch["photos"]] == [0, 1, 2]
    keys = [p["upload"]["fields"]["key"] for p in batch["photos"]]
    assert keys == [
        batch_upload_key(batch["batch_id"], i, name)
        for i, name in enumerate(["a.jpg", "b.jpg", "a.jpg"])
    ]


@pytest.mark.parametrize(
    "body", [{}, {"photos": []}, {"photos": [{"filename": "a.jpg"}] * 101}, {"photos": "a.jpg"}]
)
def test_a_batch_of_no_photos_or_too_many_is_refused_with_the_shape_to_send(
    client, shared_stack, body
):
    response = post_json(client, "/batches", body)
    assert response.status_code == 400
    assert "1 to 100 photos" in response.json_body["message"]


def test_starting_a_batch_queues_its_uploaded_photos_in_one_execution_and_fails_the_missing_one(
    local_stack, stack, workflow, client, jpeg_bytes
):
    batch = create_batch(client, [f"p{i}.jpg" for i in range(12)])
    for photo in batch["photos"][:11]:
        upload(photo, jpeg_bytes)

    response = start(client, batch)

    assert response.status_code == 202, response.body
    execution = wait_for_execution(workflow.sfn, workflow.state_machine_arn, batch["batch_id"])
    assert execution["status"] == "SUCCEEDED", execution
    messages = [
        JobMessage.from_json(m["Body"])
        for m in receive_all(local_stack.client("sqs"), stack.outputs["JobsQueueUrl"])
    ]
    assert sorted(m.job_id for m in messages) == sorted(p["job_id"] for p in batch["photos"][:11])
    assert {m.kind for m in messages} == {JobKind.RECOGNIZE}
    assert job_item(local_stack, stack, batch["batch_id"])["status"] == JobStatus.QUEUED.value
    missing = job_item(local_stack, stack, batch["photos"][11]["job_id"])
    assert (missing["status"], missing["error"]) == ("FAILED", "photo_missing")


def test_a_batch_started_twice_runs_once(local_stack, stack, workflow, client, jpeg_bytes):
    batch = create_batch(client, ["a.jpg"])
    upload(batch["photos"][0], jpeg_bytes)
    assert start(client, batch).status_code == 202
    wait_for_execution(workflow.sfn, workflow.state_machine_arn, batch["batch_id"])

    again = start(client, batch)

    assert again.status_code == 200
    assert len(receive_all(local_stack.client("sqs"), stack.outputs["JobsQueueUrl"])) == 1


def test_a_batch_answers_every_photo_with_its_result_or_its_failure(
    local_stack, shared_stack, client, jpeg_bytes
):
    batch = create_batch(client, ["a.jpg", "b.jpg"])
    upload(batch["photos"][0], jpeg_bytes)
    start(client, batch)
    done_id = batch["photos"][0]["job_id"]
    # What a worker does with a batch of messages: one object for its results, then each outcome.
    face = {
        "box": [1, 2, 3, 4],
        "probability": 0.99,
        "landmarks": [],
        "identity": "obama",
        "display_name": "Barack Obama",
    }
    document = {"schema_version": 1, "faces": [{**face, "distance": 0.4}], "job_id": done_id}
    key = "results/batches/test.json"
    local_stack.client("s3").put_object(
        Bucket=shared_stack.outputs["OutputBucketName"],
        Key=key,
        Body=json.dumps({"schema_version": 1, "results": {done_id: document}}),
    )
    local_stack.table(shared_stack.outputs["JobsTableName"]).update_item(
        Key={"job_id": done_id},
        UpdateExpression="SET #s = :done, finished_at = :t, result_key = :k",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":done": "DONE", ":t": "2026-01-01T00:00:00+00:00", ":k": key},
    )

    response = client.http.get(batch["status_url"])

    body = response.json_body
    assert (body["status"], body["final"]) == ("DONE", True)
    assert body["counts"]["DONE"] == 1 and body["counts"]["FAILED"] == 1
    # Anyone polling learns whom each face shows, never how close it came: that is for operators.
    assert body["photos"][0]["result"] == {**document, "faces": [face]}
    assert b"distance" not in response.body
    assert (body["photos"][1]["status"], body["photos"][1]["error"]) == ("FAILED", "photo_missing")
    assert "Retry-After" not in response.headers
    assert client.http.get(f"/jobs/{done_id}").json_body["result"] == {**document, "faces": [face]}
    admin = client.http.get(batch["status_url"], headers={"X-Admin-Token": ADMIN_TOKEN})
    assert admin.json_body["photos"][0]["result"] == document
    assert admin.headers["ETag"] != response.headers["ETag"]


def test_a_poll_that_finds_nothing_new_is_a_304(client, shared_stack):
    batch = create_batch(client, ["a.jpg"])
    first = client.http.get(batch["status_url"])

    again = client.http.get(batch["status_url"], headers={"If-None-Match": first.headers["ETag"]})

    assert again.status_code == 304
    assert again.body == b""
    assert int(first.headers["Retry-After"]) >= 1


def test_a_job_poll_that_finds_nothing_new_is_a_304(client, shared_stack):
    job = post_json(client, "/jobs", {"filename": "a.jpg"}).json_body
    first = client.http.get(job["status_url"])

    again = client.http.get(job["status_url"], headers={"If-None-Match": first.headers["ETag"]})

    assert (first.status_code, again.status_code) == (200, 304)


def test_an_unknown_batch_is_404_and_a_batch_is_not_a_job(client, shared_stack):
    batch = create_batch(client, ["a.jpg"])

    assert client.http.get("/batches/" + "A" * 32).status_code == 404
    assert client.http.post("/batches/" + "A" * 32 + "/start").status_code == 404
    assert client.http.get(f"/jobs/{batch['batch_id']}").status_code == 404
