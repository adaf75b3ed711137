"""POST /jobs and GET /jobs/{id}: upload slots, statuses, results, and refusals that say what is
wrong."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from control_plane import ADMIN_TOKEN, JSON, create_job, job_item, post_json

from chalicelib.config import Settings
from chalicelib.contract import JobStatus, is_job_id, result_key
from chalicelib.failures import FAILURE_MESSAGES
from chalicelib.jobs import JobStore
from chalicelib.redaction import RecognitionRedactor

pytestmark = pytest.mark.control_plane

ROOT = Path(__file__).resolve().parent.parent


def policy_of(job: dict) -> dict:
    return json.loads(base64.b64decode(job["upload"]["fields"]["policy"]))


def test_a_job_comes_with_a_presigned_post_limited_in_size_type_and_time(client, shared_stack):
    before = time.time()
    job = create_job(client, filename="my photo.png", content_type="image/png")

    assert len(job["job_id"]) >= 32 and job["status"] == JobStatus.AWAITING_UPLOAD.value
    assert job["status_url"] == f"/jobs/{job['job_id']}"
    fields = job["upload"]["fields"]
    assert fields["key"] == f"uploads/{job['job_id']}/my_photo.png"
    assert fields["Content-Type"] == "image/png"
    policy = policy_of(job)
    assert ["content-length-range", 1, 10 * 1024 * 1024] in policy["conditions"]
    assert {"Content-Type": "image/png"} in policy["conditions"]
    assert {"bucket": shared_stack.outputs["InputBucketName"]} in policy["conditions"]
    expires = time.mktime(time.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert 15 * 60 - 5 <= expires - before <= 15 * 60 + 5
    assert job["upload"]["expires_in_seconds"] == 900


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "image/webp"])
def test_every_format_the_engine_reads_gets_an_upload_slot(client, shared_stack, content_type):
    job = create_job(client, filename="photo", content_type=content_type)
    assert {"Content-Type": content_type} in policy_of(job)["conditions"]


def test_job_ids_are_unguessable_and_distinct(client, shared_stack):
    ids = {create_job(client)["job_id"] for _ in range(20)}
    assert len(ids) == 20 and all(len(i) == 32 for i in ids)


def test_by_default_no_other_origins_page_may_call_the_api(client, shared_stack):
    response = post_json(
        client, "/jobs", {"content_type": "image/jpeg"}, headers={"Origin": "https://example.org"}
    )
    assert response.status_code == 201
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_deployer_may_let_one_origins_pages_call_the_api():
    """The setting is read when app.py is imported (Chalice's decorators), so a fresh process."""
    code = (
        "import json, sys; sys.path.insert(0, 'chalice_app'); import app; "
        "print(json.dumps({path: [r.cors.allow_origin, r.cors.allow_headers] for path, methods in "
        "app.app.routes.items() for r in methods.values() if r.cors}))"
    )
    env = {**os.environ, "FACEREC_CORS_ALLOW_ORIGIN": "https://photos.example.org"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    routes = json.loads(done.stdout.splitlines()[-1])
    assert "/jobs" in routes and "/app" not in routes
    assert all(
        origin == "https://photos.example.org"
        and {"X-Admin-Token", "X-Api-Key"} <= set(headers.split(","))
        for origin, headers in routes.values()
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"content_type": "text/plain"}, "content_type 'text/plain' is not accepted"),
        ({"content_type": "image/gif"}, "not accepted"),
        ({"filename": 42}, "filename must be a string"),
        ({"filename": "../../"}, "no usable characters"),
        ({"filename": "a.jpg", "bucket": "elsewhere"}, "unknown fields: bucket"),
        (["a list"], "must be a JSON object"),
    ],
)
def test_invalid_requests_are_400_with_a_reason(client, shared_stack, body, says):
    response = post_json(client, "/jobs", body)
    assert response.status_code == 400
    assert response.json_body["error"] == "BadRequest"
    assert says in response.json_body["message"]


def test_a_body_that_is_not_json_is_400(client, shared_stack):
    response = client.http.post("/jobs", headers=JSON, body="{not json")
    assert response.status_code == 400
    assert "Message" in response.json_body or "message" in response.json_body


@pytest.mark.parametrize("path", ["/jobs", "/batches", "/people", "/people/obama/photos"])
def test_a_body_nested_past_the_parsers_depth_is_400(client, shared_stack, path):
    nested = "[" * 100_000 + "]" * 100_000
    response = client.http.post(path, headers={**JSON, "X-Admin-Token": ADMIN_TOKEN}, body=nested)
    assert response.status_code == 400
    assert response.json_body == {
        "error": "BadRequest",
        "message": "the JSON body is nested too deeply",
    }


def test_paths_in_file_names_are_dropped(client, shared_stack):
    job = create_job(client, filename="C:\\Users\\me\\..\\holiday pic.jpeg")
    assert job["upload"]["fields"]["key"].endswith("/holiday_pic.jpeg")


def test_a_file_name_in_another_script_keeps_a_stem_and_its_extension(client, shared_stack):
    job = create_job(client, filename="写真.jpg")
    assert job["upload"]["fields"]["key"] == f"uploads/{job['job_id']}/photo.jpg"


@pytest.mark.parametrize(
    "job_id", ["A" * 32, "short", "has%2Fslash0000000000000000000000", "x" * 65]
)
def test_unknown_or_malformed_job_ids_are_404(client, shared_stack, job_id):
    response = client.http.get(f"/jobs/{job_id}")
    assert response.status_code == 404
    assert response.json_body == {"error": "NotFound", "message": f"no job {job_id!r}"}


def test_a_job_id_followed_by_a_newline_is_malformed():
    assert is_job_id("A" * 32) and not is_job_id("A" * 32 + "\n")


def test_a_new_job_awaits_its_upload(client, shared_stack):
    job = create_job(client)
    body = client.http.get(job["status_url"]).json_body
    assert (body["status"], body["final"], body["kind"]) == ("AWAITING_UPLOAD", False, "recognize")
    assert "result" not in body and "error" not in body and "cause" not in body


# A recognition as a worker writes it (worker_ami/facerec_worker/processor.py): every face's fields.
DOCUMENT = {
    "schema_version": 1,
    "photo": "obama.jpg",
    "width": 200,
    "height": 200,
    "model": {"name": "dlib", "threshold": 0.6},
    "faces": [
        {
            "box": [10, 20, 110, 140],
            "probability": 0.99,
            "landmarks": [[40, 60], [80, 60], [60, 80], [45, 110], [75, 110]],
            "identity": "obama",
            "display_name": "Barack Obama",
            "distance": 0.4,
        },
        {
            "box": [120, 20, 190, 100],
            "probability": 0.95,
            "landmarks": [],
            "identity": None,
            "display_name": None,
            "distance": 0.83,
        },
    ],
}


def finish_job(local_stack, shared_stack, job_id: str, document: dict) -> None:
    """What a worker does when it finishes: the result document first, then the status."""
    local_stack.client("s3").put_object(
        Bucket=shared_stack.outputs["OutputBucketName"],
        Key=result_key(job_id),
        Body=json.dumps(document),
    )
    local_stack.table(shared_stack.outputs["JobsTableName"]).update_item(
        Key={"job_id": job_id},
        UpdateExpression="SET #s = :done, finished_at = :t",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":done": "DONE", ":t": "2026-01-01T00:00:00.000+00:00"},
    )


def test_a_done_job_names_its_faces_people_to_anyone_but_not_how_close_they_came(
    local_stack, shared_stack, client
):
    job = create_job(client)
    finish_job(local_stack, shared_stack, job["job_id"], DOCUMENT)

    response = client.http.get(job["status_url"])

    body = response.json_body
    assert (body["status"], body["final"]) == ("DONE", True)
    assert b"distance" not in response.body
    assert body["result"] == {
        **DOCUMENT,
        "faces": [{k: v for k, v in face.items() if k != "distance"} for face in DOCUMENT["faces"]],
    }
    assert job_item(local_stack, shared_stack, job["job_id"])["status"] == "DONE"


def test_an_operator_polling_with_the_admin_token_gets_the_whole_document_under_another_etag(
    local_stack, shared_stack, client
):
    job = create_job(client)
    finish_job(local_stack, shared_stack, job["job_id"], DOCUMENT)
    public = client.http.get(job["status_url"])

    admin = client.http.get(job["status_url"], headers={"X-Admin-Token": ADMIN_TOKEN})

    assert admin.status_code == 200 and admin.json_body["result"] == DOCUMENT
    assert admin.headers["ETag"] != public.headers["ETag"]
    assert admin.headers["Vary"] == "X-Admin-Token"
    # The public ETag must not vouch for the admin body it never saw, nor the other way round.
    assert (
        client.http.get(
            job["status_url"],
            headers={"X-Admin-Token": ADMIN_TOKEN, "If-None-Match": public.headers["ETag"]},
        ).status_code
        == 200
    )
    assert (
        client.http.get(
            job["status_url"], headers={"If-None-Match": admin.headers["ETag"]}
        ).status_code
        == 200
    )


def test_a_poll_with_a_wrong_admin_token_is_refused_rather_than_answered_publicly(
    local_stack, shared_stack, client
):
    job = create_job(client)
    finish_job(local_stack, shared_stack, job["job_id"], DOCUMENT)

    response = client.http.get(job["status_url"], headers={"X-Admin-Token": "not-the-token"})

    assert response.status_code == 403
    assert b"distance" not in response.body


def test_a_failed_job_says_why_in_a_fixed_sentence_without_its_cause(
    local_stack, shared_stack, client
):
    job = create_job(client)
    table = local_stack.table(shared_stack.outputs["JobsTableName"])
    table.update_item(
        Key={"job_id": job["job_id"]},
        UpdateExpression="SET #s = :failed, #e = :e, cause = :c",
        ExpressionAttributeNames={"#s": "status", "#e": "error"},
        ExpressionAttributeValues={
            ":failed": "FAILED",
            ":e": "truncated_photo",
            ":c": "s3://bucket/uploads/x/a.jpg: image file is truncated",
        },
    )
    body = client.http.get(job["status_url"]).json_body
    assert body["status"] == "FAILED"
    assert (body["error"], body["message"]) == (
        "truncated_photo",
        FAILURE_MESSAGES["truncated_photo"],
    )
    assert "cause" not in body


def test_a_poll_after_a_deletion_redacted_the_result_is_answered_anew_not_304(
    local_stack, shared_stack, client
):
    """A client holding the ETag of an answer that named a deleted person must not be told to keep
    it."""
    job = create_job(client)
    leaver = f"leaver-{job['job_id'][:8].lower()}"
    named = {
        **DOCUMENT,
        "faces": [{**DOCUMENT["faces"][0], "identity": leaver, "display_name": "Leaver"}],
    }
    finish_job(local_stack, shared_stack, job["job_id"], named)
    local_stack.table(shared_stack.outputs["JobsTableName"]).update_item(
        Key={"job_id": job["job_id"]},
        UpdateExpression="SET summary = :summary",
        ExpressionAttributeValues={":summary": {"faces": 1, "identities": [leaver]}},
    )
    before = client.http.get(job["status_url"])

    settings = Settings.from_env(shared_stack.app_environment())
    RecognitionRedactor(
        JobStore(local_stack.table(settings.jobs_table)), local_stack.client("s3"), settings
    ).redact(leaver)
    after = client.http.get(job["status_url"], headers={"If-None-Match": before.headers["ETag"]})

    assert before.json_body["result"]["faces"][0]["identity"] == leaver
    assert after.status_code == 200
    assert after.json_body["result"]["faces"][0]["identity"] is None
