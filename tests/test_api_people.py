"""Enrollment: people and their photos are gallery changes, so every route needs the admin token."""

from __future__ import annotations

import hmac
import json
import logging

import pytest
from control_plane import ADMIN_TOKEN, post_json

from chalicelib.contract import JobStatus

pytestmark = pytest.mark.control_plane

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


def create_person(client, person_id="obama", display_name="Barack Obama"):
    return post_json(
        client, "/people", {"person_id": person_id, "display_name": display_name}, headers=ADMIN
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/people"),
        ("GET", "/people"),
        ("DELETE", "/people/obama"),
        ("POST", "/people/obama/photos"),
    ],
)
@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, "Unauthorized"),
        ({"X-Admin-Token": "guess"}, 403, "Forbidden"),
        ({"X-Admin-Token": ""}, 401, "Unauthorized"),
    ],
)
def test_gallery_routes_refuse_without_the_admin_token(
    client, shared_stack, method, path, headers, status, error
):
    response = client.http.request(
        method, path, headers={"Content-Type": "application/json", **headers}, body=b"{}"
    )
    assert response.status_code == status
    assert response.json_body["error"] == error


def test_gallery_changes_are_off_when_no_token_is_configured(client, shared_stack, settings_env):
    settings_env({"FACEREC_ADMIN_TOKEN": ""})
    response = create_person(client)
    assert response.status_code == 403
    assert "no admin token is configured" in response.json_body["message"]


def test_the_token_can_come_from_ssm(local_stack, client, shared_stack, settings_env):
    local_stack.client("ssm").put_parameter(
        Name="/facerec/test/admin-token", Value="from-ssm", Type="SecureString", Overwrite=True
    )
    settings_env(
        {"FACEREC_ADMIN_TOKEN": "", "FACEREC_ADMIN_TOKEN_PARAMETER": "/facerec/test/admin-token"}
    )
    response = post_json(
        client, "/people", {"person_id": "ssm-person"}, headers={"X-Admin-Token": "from-ssm"}
    )
    assert response.status_code == 201


def test_create_list_and_delete_people(client, stack):
    assert create_person(client).status_code == 201
    assert create_person(client, "biden", "Joe Biden").status_code == 201
    duplicate = create_person(client)
    assert (duplicate.status_code, duplicate.json_body["error"]) == (409, "Conflict")

    listed = client.http.get("/people", headers=ADMIN).json_body["people"]
    assert [(p["person_id"], p["display_name"]) for p in listed] == [
        ("biden", "Joe Biden"),
        ("obama", "Barack Obama"),
    ]

    assert client.http.delete("/people/obama", headers=ADMIN).status_code == 204
    gone = client.http.delete("/people/obama", headers=ADMIN)
    assert (gone.status_code, gone.json_body["error"]) == (404, "NotFound")
    assert [
        p["person_id"] for p in client.http.get("/people", headers=ADMIN).json_body["people"]
    ] == ["biden"]


@pytest.mark.parametrize(
    "body",
    [
        {"person_id": "Obama"},
        {"person_id": ""},
        {"person_id": "a/b"},
        {"person_id": "x" * 65},
        {"person_id": "bob\n"},  # accepted once, and then no DELETE could name it
        {},
        {"person_id": "ok", "display_name": ""},
    ],
)
def test_invalid_people_are_400(client, shared_stack, body):
    response = post_json(client, "/people", body, headers=ADMIN)
    assert (response.status_code, response.json_body["error"]) == (400, "BadRequest")


def test_an_enrollment_photo_is_a_job_for_that_person(client, shared_stack):
    create_person(client, "enrollee")
    response = post_json(client, "/people/enrollee/photos", {"filename": "e1.jpg"}, headers=ADMIN)
    assert response.status_code == 201
    job = response.json_body
    assert (job["kind"], job["status"]) == ("enroll", JobStatus.AWAITING_UPLOAD.value)
    assert client.http.get(job["status_url"]).json_body["person"] == "enrollee"

    unknown = post_json(client, "/people/nobody-here/photos", {"filename": "e1.jpg"}, headers=ADMIN)
    assert (unknown.status_code, unknown.json_body["error"]) == (404, "NotFound")


def test_many_enrollment_photos_in_one_request_are_one_job_each(client, stack, local_stack):
    create_person(client, "bulk")
    photos = [{"filename": f"b{n}.jpg"} for n in range(3)]
    response = post_json(client, "/people/bulk/photos", {"photos": photos}, headers=ADMIN)
    assert response.status_code == 201
    jobs = response.json_body["jobs"]
    assert [(j["kind"], j["status"]) for j in jobs] == [
        ("enroll", JobStatus.AWAITING_UPLOAD.value)
    ] * 3
    assert len({j["job_id"] for j in jobs}) == 3
    record = local_stack.table(stack.outputs["PeopleTableName"]).get_item(
        Key={"person_id": "bulk"}
    )["Item"]
    assert record["enrollment_uploads"] == {
        f"uploads/{j['job_id']}/b{n}.jpg" for n, j in enumerate(jobs)
    }

    too_many = post_json(
        client, "/people/bulk/photos", {"photos": [{"filename": "x.jpg"}] * 101}, headers=ADMIN
    )
    assert (too_many.status_code, too_many.json_body["error"]) == (400, "BadRequest")
    assert "1 to 100 photos" in too_many.json_body["message"]


def test_deleting_a_person_removes_their_photos_and_results_and_queues_a_compaction(
    client, stack, local_stack
):
    s3, sqs = local_stack.client("s3"), local_stack.client("sqs")
    create_person(client, "leaver")
    create_person(client, "stayer")
    jobs = {}
    for person in ("leaver", "stayer"):
        jobs[person] = post_json(
            client, f"/people/{person}/photos", {"filename": "p.jpg"}, headers=ADMIN
        ).json_body["job_id"]
        s3.put_object(
            Bucket=stack.outputs["InputBucketName"],
            Key=f"uploads/{jobs[person]}/p.jpg",
            Body=b"photo",
        )
        s3.put_object(
            Bucket=stack.outputs["OutputBucketName"], Key=f"results/{jobs[person]}.json", Body=b"{}"
        )

    assert client.http.delete("/people/leaver", headers=ADMIN).status_code == 204

    def keys(bucket):
        return [
            o["Key"] for o in s3.list_objects_v2(Bucket=stack.outputs[bucket]).get("Contents", [])
        ]

    assert keys("InputBucketName") == [f"uploads/{jobs['stayer']}/p.jpg"]
    assert keys("OutputBucketName") == [f"results/{jobs['stayer']}.json"]
    assert client.http.get(f"/jobs/{jobs['leaver']}").status_code == 404
    (message,) = sqs.receive_message(QueueUrl=stack.outputs["JobsQueueUrl"])["Messages"]
    compaction = client.http.get(f"/jobs/{json.loads(message['Body'])['job_id']}").json_body
    assert (compaction["kind"], compaction["status"]) == ("compact", JobStatus.QUEUED.value)


def test_the_people_list_shows_no_internal_fields(client, stack):
    create_person(client, "private")
    post_json(client, "/people/private/photos", {"filename": "p.jpg"}, headers=ADMIN)
    (person,) = client.http.get("/people", headers=ADMIN).json_body["people"]
    assert set(person) == {"person_id", "display_name", "created_at"}


def audit_lines(caplog) -> list[dict]:
    return [record.audit for record in caplog.records if record.name == "facerec.audit"]


def test_each_admin_request_is_audited_with_its_caller_and_the_person_as_a_keyed_digest(
    client, stack, caplog
):
    caplog.set_level(logging.INFO, logger="facerec.audit")
    create_person(client, "audited", "Audrey Audit")
    client.http.request(
        "DELETE", "/people/audited", headers={**ADMIN, "User-Agent": "ops-console/1.0"}
    )

    created, deleted = audit_lines(caplog)
    digest = hmac.new(ADMIN_TOKEN.encode(), b"audited", "sha256").hexdigest()[:16]
    assert (created["action"], created["person_digest"], created["allowed"]) == (
        "create person",
        digest,
        True,
    )
    assert (deleted["action"], deleted["person_digest"], deleted["allowed"]) == (
        "delete person",
        digest,
        True,
    )
    assert deleted["user_agent"] == "ops-console/1.0" and deleted["source_ip"]
    assert not [
        r
        for r in caplog.records
        if r.name == "facerec.audit" and "audited" in r.getMessage() + json.dumps(r.audit)
    ]


def test_a_refused_admin_request_is_audited_too(client, shared_stack, caplog):
    caplog.set_level(logging.INFO, logger="facerec.audit")
    client.http.request("DELETE", "/people/someone", headers={"X-Admin-Token": "guess"})

    (refused,) = audit_lines(caplog)
    assert (refused["action"], refused["allowed"]) == ("delete person", False)
