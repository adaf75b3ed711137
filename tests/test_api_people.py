"""Enrollment: people and their photos are gallery changes, so every route needs the admin token."""

from __future__ import annotations

import pytest
from control_plane import ADMIN_TOKEN, post_json

from chalicelib.contract import JobStatus

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


def create_person(client, person_id="obama", display_name="Barack Obama"):
    return post_json(client, "/people", {"person_id": person_id, "display_name": display_name}, headers=ADMIN)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/people"), ("GET", "/people"), ("DELETE", "/people/obama"), ("POST", "/people/obama/photos")],
)
@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [({}, 401, "Unauthorized"), ({"X-Admin-Token": "guess"}, 403, "Forbidden"), ({"X-Admin-Token": ""}, 401, "Unauthorized")],
)
def test_gallery_routes_refuse_without_the_admin_token(client, shared_stack, method, path, headers, status, error):
    response = client.http.request(method, path, headers={"Content-Type": "application/json", **headers}, body=b"{}")
    assert response.status_code == status
    assert response.json_body["error"] == error


def test_gallery_changes_are_off_when_no_token_is_configured(client, shared_stack, settings_env):
    settings_env({"FACEREC_ADMIN_TOKEN": ""})
    response = create_person(client)
    assert response.status_code == 403
    assert "no admin token is configured" in response.json_body["message"]


def test_the_token_can_come_from_ssm(local_stack, client, shared_stack, settings_env):
    local_stack.client("ssm").put_parameter(Name="/facerec/test/admin-token", Value="from-ssm", Type="SecureString", Overwrite=True)
    settings_env({"FACEREC_ADMIN_TOKEN": "", "FACEREC_ADMIN_TOKEN_PARAMETER": "/facerec/test/admin-token"})
    response = post_json(client, "/people", {"person_id": "ssm-person"}, headers={"X-Admin-Token": "from-ssm"})
    assert response.status_code == 201


def test_create_list_and_delete_people(client, stack):
    assert create_person(client).status_code == 201
    assert create_person(client, "biden", "Joe Biden").status_code == 201
    duplicate = create_person(client)
    assert (duplicate.status_code, duplicate.json_body["error"]) == (409, "Conflict")

    listed = client.http.get("/people", headers=ADMIN).json_body["people"]
    assert [(p["person_id"], p["display_name"]) for p in listed] == [("biden", "Joe Biden"), ("obama", "Barack Obama")]

    assert client.http.delete("/people/obama", headers=ADMIN).status_code == 204
    gone = client.http.delete("/people/obama", headers=ADMIN)
    assert (gone.status_code, gone.json_body["error"]) == (404, "NotFound")
    assert [p["person_id"] for p in client.http.get("/people", headers=ADMIN).json_body["people"]] == ["biden"]


@pytest.mark.parametrize(
    "body",
    [{"person_id": "Obama"}, {"person_id": ""}, {"person_id": "a/b"}, {"person_id": "x" * 65}, {}, {"person_id": "ok", "display_name": ""}],
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
