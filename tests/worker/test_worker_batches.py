"""A batch from the API to the worker and back: every photo ends once, alone when it fails, and
a worker's batch of messages costs one result object, not one a photo."""

from __future__ import annotations

import json

from control_plane import post_json, upload, wait_for_execution

from chalicelib.contract import RESULT_PREFIX, JobStatus

from .conftest import FACES

PHOTOS = sorted(FACES.glob("*.jpg"))


def batch_of(client, count: int) -> dict:
    body = {
        "photos": [
            {"filename": PHOTOS[i % len(PHOTOS)].name, "content_type": "image/jpeg"}
            for i in range(count)
        ]
    }
    response = post_json(client, "/batches", body)
    assert response.status_code == 201, response.body
    return response.json_body


def uploaded_and_started(harness, client, batch: dict, bad_index: int | None = None) -> None:
    for photo in batch["photos"]:
        data = (
            b"these bytes are not a photo"
            if photo["index"] == bad_index
            else (FACES / photo["filename"]).read_bytes()
        )
        upload(photo, data)
    assert client.http.post(batch["start_url"]).status_code == 202
    execution = wait_for_execution(
        harness.local_stack.client("stepfunctions"),
        harness.stack.outputs["StateMachineArn"],
        batch["batch_id"],
    )
    assert execution["status"] == "SUCCEEDED", execution


def test_a_batch_of_100_with_one_undecodable_photo_answers_99_results_and_the_one_failure(
    harness, client
):
    harness.add_person("obama", "Barack Obama")
    batch = batch_of(client, 100)
    uploaded_and_started(harness, client, batch, bad_index=37)

    harness.worker(idle_seconds=0).run()

    body = client.http.get(batch["status_url"]).json_body
    assert (body["status"], body["final"], body["counts"]["DONE"], body["counts"]["FAILED"]) == (
        "DONE",
        True,
        99,
        1,
    )
    failed = body["photos"][37]
    assert (failed["status"], failed["error"]) == ("FAILED", "not_an_image")
    assert "cannot" not in failed["message"] and "Traceback" not in failed["message"]
    assert all("faces" in p["result"] for p in body["photos"] if p["index"] != 37)
    assert harness.messages_left() == 0


def test_a_worker_writes_one_result_object_for_the_photos_of_a_batch_of_messages(harness, client):
    batch = batch_of(client, 20)
    uploaded_and_started(harness, client, batch)

    harness.worker(idle_seconds=0).run()

    listed = harness.s3.list_objects_v2(
        Bucket=harness.stack.outputs["OutputBucketName"], Prefix=RESULT_PREFIX
    )
    objects = [o["Key"] for o in listed["Contents"]]
    # A receive hands out up to 10 messages; a worker batch of one photo would write its own object.
    assert len(objects) <= 20 // 2
    for key in objects:
        document = json.loads(
            harness.s3.get_object(Bucket=harness.stack.outputs["OutputBucketName"], Key=key)[
                "Body"
            ].read()
        )
        for job_id in document.get("results", {document.get("job_id"): None}):
            assert harness.job(job_id)["result_key"] == key
    assert {harness.job(p["job_id"])["status"] for p in batch["photos"]} == {JobStatus.DONE.value}
