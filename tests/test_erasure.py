"""Deleting a person, on the control plane's side (issue 19): ordered so that a DELETE that failed
half way is asked again and finishes, S3's batch-delete refusals read, recognitions that named the
person redacted, late uploads through their old slots removed, and the functions' logs kept for a
stated time."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from control_plane import ADMIN_TOKEN, deliver_upload_events, post_json, upload

from chalicelib.compactions import Compactions
from chalicelib.config import Settings
from chalicelib.contract import (
    ERASING,
    SHARED_RESULTS,
    JobKind,
    JobStatus,
    ObjectsNotDeletedError,
    delete_objects,
)
from chalicelib.erasure import PersonEraser
from chalicelib.exceptions import StorageError
from chalicelib.jobs import JobStore
from chalicelib.people import PeopleStore
from infra.names import FUNCTIONS
from infra.stack import load_template

pytestmark = pytest.mark.control_plane

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}
README = Path(__file__).resolve().parents[1] / "README.md"


def refuse_deletes(s3: Any, times: int | None = None) -> list[int]:
    """Make DeleteObjects on this client answer as S3 does when it deletes nothing: a 200 whose
    `Errors` names every key (`times` calls, or every call); the calls seen."""
    calls: list[int] = []

    def refuse(params: dict[str, Any], **_: Any) -> Any:
        calls.append(1)
        if times is not None and len(calls) > times:
            return None
        errors = [{"Key": key, "Code": "InternalError"} for key in request_keys(params)]
        return AWSResponse("https://s3", 200, {}, None), {"Errors": errors}

    s3.meta.events.register("before-call.s3.DeleteObjects", refuse)
    return calls


def request_keys(params: dict[str, Any]) -> list[str]:
    """The keys of a DeleteObjects request as it leaves (its XML body)."""
    return [
        element.text
        for element in ElementTree.fromstring(params["body"]).iter()
        if element.tag.endswith("Key")
    ]


def keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_batch_delete_errors_are_asked_again_and_raised_when_they_stay(local_stack, stack):
    s3 = local_stack.session().client("s3", endpoint_url=local_stack.endpoint_url)
    bucket = stack.outputs["InputBucketName"]
    for key in ("uploads/a/p.jpg", "uploads/b/p.jpg"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"photo")

    calls = refuse_deletes(s3, times=1)
    delete_objects(s3, bucket, ["uploads/a/p.jpg"])
    assert (len(calls), keys(s3, bucket)) == (2, ["uploads/b/p.jpg"])

    refuse_deletes(s3)
    with pytest.raises(ObjectsNotDeletedError) as refused:
        delete_objects(s3, bucket, ["uploads/b/p.jpg"])
    assert refused.value.errors == {"uploads/b/p.jpg": "InternalError"}


def recognized_together(local_stack: Any, stack: Any, leaver: str, stayer: str) -> dict[str, str]:
    """Two photos a worker recognized in one batch, as it records them: one shared result object,
    one DONE record each naming whom its faces showed. Their job ids by who is in the photo."""
    s3, jobs = local_stack.client("s3"), local_stack.table(stack.outputs["JobsTableName"])
    face = {"box": [0, 0, 1, 1], "probability": 0.99, "landmarks": [], "distance": 0.3}
    shared = "results/batches/abc.json"
    photos = {"both": [leaver, stayer], "stayer": [stayer]}
    documents = {}
    for n, (name, people) in enumerate(photos.items()):
        job_id = f"B{'x' * 30}-0{n}"
        key = f"batches/B{'x' * 30}/0{n}/p.jpg"
        s3.put_object(Bucket=stack.outputs["InputBucketName"], Key=key, Body=b"photo")
        jobs.put_item(
            Item={
                "job_id": job_id,
                "kind": JobKind.RECOGNIZE.value,
                "status": JobStatus.DONE.value,
                "upload_key": key,
                "result_key": shared,
                "summary": {"faces": len(people), "identities": people},
            }
        )
        faces = [{**face, "identity": person, "display_name": person.title()} for person in people]
        documents[job_id] = {"job_id": job_id, "kind": "recognize", "faces": faces}
        photos[name] = job_id
    s3.put_object(
        Bucket=stack.outputs["OutputBucketName"],
        Key=shared,
        Body=json.dumps({SHARED_RESULTS: documents}).encode(),
    )
    return photos


def test_a_delete_that_failed_half_way_is_asked_again_and_finishes(local_stack, stack, client):
    s3 = local_stack.client("s3")
    input_bucket, output_bucket = (
        stack.outputs["InputBucketName"],
        stack.outputs["OutputBucketName"],
    )
    for person in ("leaver", "stayer"):
        post_json(
            client, "/people", {"person_id": person, "display_name": person.title()}, headers=ADMIN
        )
    enrollment = post_json(
        client, "/people/leaver/photos", {"filename": "p.jpg"}, headers=ADMIN
    ).json_body["job_id"]
    s3.put_object(Bucket=input_bucket, Key=f"uploads/{enrollment}/p.jpg", Body=b"photo")
    s3.put_object(
        Bucket=output_bucket, Key=f"results/{enrollment}.json", Body=b'{"person": "leaver"}'
    )
    photos = recognized_together(local_stack, stack, "leaver", "stayer")

    # An eraser whose S3 deletes nothing: it stops at the first batch delete, with the person
    # marked.
    refusing = local_stack.session().client("s3", endpoint_url=local_stack.endpoint_url)
    refuse_deletes(refusing)
    settings = Settings.from_env(stack.app_environment())
    jobs, people = (
        JobStore(local_stack.table(stack.outputs["JobsTableName"])),
        PeopleStore(local_stack.table(stack.outputs["PeopleTableName"])),
    )
    with pytest.raises(StorageError):
        PersonEraser(
            people,
            jobs,
            Compactions(jobs, local_stack.client("sqs"), refusing, settings),
            refusing,
            settings,
        ).erase("leaver")
    people_table = local_stack.table(stack.outputs["PeopleTableName"])
    assert (
        ERASING in people_table.get_item(Key={"person_id": "leaver"}, ConsistentRead=True)["Item"]
    )
    assert [
        p["person_id"] for p in client.http.get("/people", headers=ADMIN).json_body["people"]
    ] == ["stayer"]
    assert (
        post_json(client, "/people/leaver/photos", {"filename": "q.jpg"}, headers=ADMIN).status_code
        == 404
    )

    assert client.http.delete("/people/leaver", headers=ADMIN).status_code == 204
    assert "Item" not in people_table.get_item(Key={"person_id": "leaver"}, ConsistentRead=True)
    assert keys(s3, input_bucket) == [jobs.get(photos["stayer"])["upload_key"]]
    assert "leaver" not in " ".join(keys(s3, output_bucket))
    shared = json.loads(
        s3.get_object(Bucket=output_bucket, Key="results/batches/abc.json")["Body"].read()
    )[SHARED_RESULTS]
    assert [
        [face["identity"] for face in shared[photos[p]]["faces"]] for p in ("both", "stayer")
    ] == [[None, "stayer"], ["stayer"]]
    assert [f["display_name"] for f in shared[photos["both"]]["faces"]] == [None, "Stayer"]
    assert [jobs.get(photos[p])["summary"]["identities"] for p in ("both", "stayer")] == [
        [None, "stayer"],
        ["stayer"],
    ]
    assert jobs.get(enrollment) is None
    gone = client.http.delete("/people/leaver", headers=ADMIN)
    assert (gone.status_code, gone.json_body["error"]) == (404, "NotFound")


def test_an_upload_through_a_slot_issued_before_the_delete_is_removed_when_its_event_arrives(
    local_stack,
    stack,
    client,
    app_module,
    jpeg_bytes,
):
    post_json(client, "/people", {"person_id": "leaver"}, headers=ADMIN)
    slot = post_json(
        client, "/people/leaver/photos", {"filename": "late.jpg"}, headers=ADMIN
    ).json_body
    assert client.http.delete("/people/leaver", headers=ADMIN).status_code == 204

    upload(slot, jpeg_bytes)
    assert keys(local_stack.client("s3"), stack.outputs["InputBucketName"]) == [
        f"uploads/{slot['job_id']}/late.jpg"
    ]
    deliver_upload_events(local_stack, stack, app_module)
    assert keys(local_stack.client("s3"), stack.outputs["InputBucketName"]) == []


def test_every_functions_log_group_is_the_stacks_with_the_retention_the_readme_states():
    resources = load_template()["Resources"].values()
    groups = {
        json.dumps(r["Properties"]["LogGroupName"]): r["Properties"].get("RetentionInDays")
        for r in resources
        if r["Type"] == "AWS::Logs::LogGroup"
    }
    for function in FUNCTIONS:
        name = json.dumps({"Fn::Sub": "/aws/lambda/${StagePrefix}" + function.suffix})
        assert groups.get(name) == {"Ref": "WorkerLogRetentionDays"}, function.name
    assert "function logs are kept 14 days" in README.read_text(encoding="utf-8")
