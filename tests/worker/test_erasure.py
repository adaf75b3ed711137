"""Deleting a person leaves nothing that names them (issue 19): every object of both buckets and
every item of both tables read back from moto after DELETE and its compaction, with workers,
the engine and the API's eraser as they run; and the orderings that make it hold."""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from typing import Any

import numpy as np

from chalicelib.compactions import Compactions
from chalicelib.config import Settings
from chalicelib.contract import SHARED_RESULTS, JobKind, JobStatus
from chalicelib.erasure import PersonEraser
from chalicelib.jobs import JobStore
from chalicelib.people import PeopleStore
from facerec_worker.engine import Owner
from facerec_worker.gallery_store import SETTLE_SECONDS, GalleryStore
from facerec_worker.ledger import JobLedger
from facerec_worker.metrics import MetricsPublisher

from .conftest import photo_bytes as captioned_photo

LEAVER, LEAVER_NAME = "obama", "Barack Obama"
STAYER, STAYER_NAME = "biden", "Joe Biden"


def photo_bytes(name: str) -> bytes:
    """The photo with its EXIF caption blanked: the press photo of Biden is captioned "President
    Barack Obama and Vice President Joe Biden", and what a client uploads is not the service's to
    scan; blanks of the same length keep the EXIF block as it was."""
    return re.sub(rb"(?i)barack|obama|joe|biden", lambda m: b" " * len(m[0]), captioned_photo(name))


def eraser_of(harness: Any) -> tuple[PeopleStore, PersonEraser]:
    """The API's own people store and eraser, on the harness's stack."""
    settings = Settings.from_env(harness.stack.app_environment())
    jobs = JobStore(harness.jobs)
    people = PeopleStore(harness.people)
    return people, PersonEraser(
        people, jobs, Compactions(jobs, harness.sqs, harness.s3, settings), harness.s3, settings
    )


def enroll_both(harness: Any) -> PeopleStore:
    people, _ = eraser_of(harness)
    people.create(LEAVER, LEAVER_NAME)
    people.create(STAYER, STAYER_NAME)
    # File names that name nobody: the scan below looks for the person in every key and body.
    for person, photo in ((LEAVER, "obama.jpg"), (STAYER, "biden.jpg")):
        harness.queue(photo_bytes(photo), filename="enroll.jpg", kind=JobKind.ENROLL, person=person)
    harness.worker().run()
    return people


def everything_stored(harness: Any) -> list[str]:
    """Every key and body of both buckets and every item of both tables, as text."""
    found = []
    for bucket in (
        harness.stack.outputs["InputBucketName"],
        harness.stack.outputs["OutputBucketName"],
    ):
        for page in harness.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                body = harness.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                found.append(f"s3://{bucket}/{item['Key']}: {body.decode('latin-1')}")
    for table in (harness.jobs, harness.people):
        found += [f"{table.name}: {item!r}" for item in table.scan(ConsistentRead=True)["Items"]]
    return found


def naming(found: list[str], *names: str) -> list[str]:
    return [text[:200] for text in found if any(name.lower() in text.lower() for name in names)]


def test_after_delete_and_its_compaction_nothing_stored_names_the_person_and_others_results_stay(
    harness,
):
    enroll_both(harness)
    # Three photos in one batch: one shared result object, holding both people's faces.
    together = {
        photo: harness.queue(photo_bytes(photo))
        for photo in ("obama_and_biden.jpg", "obama2.jpg", "biden.jpg")
    }
    harness.worker().run()
    alone = harness.queue(photo_bytes("obama2.jpg"))
    harness.worker().run()
    shared_key = harness.job(together["biden.jpg"])["result_key"]
    assert SHARED_RESULTS in json.loads(
        harness.s3.get_object(Bucket=harness.stack.outputs["OutputBucketName"], Key=shared_key)[
            "Body"
        ].read()
    )
    assert naming(everything_stored(harness), LEAVER, LEAVER_NAME)

    _, eraser = eraser_of(harness)
    eraser.erase(LEAVER)
    harness.worker().run()  # the compaction the deletion queued

    assert naming(everything_stored(harness), LEAVER, LEAVER_NAME) == []
    # Whoever else the same photos showed is answered as before, from the same shared object.
    two_people = harness.result(together["obama_and_biden.jpg"])["faces"]
    assert Counter(face["identity"] for face in two_people) == Counter([STAYER, None, None])
    stayer = harness.result(together["biden.jpg"])["faces"]
    assert [(face["identity"], face["display_name"]) for face in stayer] == [(STAYER, STAYER_NAME)]
    assert harness.job(together["biden.jpg"])["summary"]["identities"] == [STAYER]
    assert [face["identity"] for face in harness.result(alone)["faces"]] == [None]
    assert harness.job(alone)["status"] == JobStatus.DONE.value
    input_keys = [
        o["Key"]
        for o in harness.s3.list_objects_v2(Bucket=harness.stack.outputs["InputBucketName"])[
            "Contents"
        ]
    ]
    assert harness.job(together["biden.jpg"])["upload_key"] in input_keys
    assert harness.job(alone)["upload_key"] not in input_keys


def test_a_person_marked_for_erasure_is_named_and_enrolled_by_no_worker(harness):
    """An erasure that stopped after its first write (the mark) has already stopped every match."""
    people = enroll_both(harness)
    people.begin_erasure(LEAVER)
    probe = harness.queue(photo_bytes("obama2.jpg"))
    late = harness.queue(
        photo_bytes("obama2.jpg"), filename="enroll.jpg", kind=JobKind.ENROLL, person=LEAVER
    )
    harness.worker().run()
    assert [face["identity"] for face in harness.result(probe)["faces"]] == [None]
    assert (harness.job(late)["status"], harness.job(late)["error"]) == (
        JobStatus.FAILED.value,
        "person_not_found",
    )
    assert LEAVER not in harness.job(late)["cause"]
    assert people.get(LEAVER) is None and [p["person_id"] for p in people.list()] == [STAYER]


def vector(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(128).astype(np.float32)


def test_a_compaction_that_loses_the_manifest_compacts_again_and_keeps_no_deleted_face(harness):
    """The winner read the people before the deletion and kept the deleted person's faces; the
    compaction the deletion queued, losing the race to it, must not leave them there."""
    engine, bucket = harness.engine, harness.stack.outputs["OutputBucketName"]
    later = lambda: time.time() + SETTLE_SECONDS + 1  # noqa: E731 - every change settled

    def gallery(s3: Any) -> GalleryStore:
        return GalleryStore(
            s3, bucket, model=engine.model, detector=engine.detector, dimensions=128, clock=later
        )

    writer = gallery(harness.s3)
    writer.append(Owner(LEAVER, "i"), vector(1), "job-leaver-padding-xxxxxx")
    writer.append(Owner(STAYER, "i"), vector(2), "job-stayer-padding-xxxxxx")
    finished = JobLedger(
        harness.jobs, "i-test", metrics=MetricsPublisher("facerec-test")
    ).finished_before

    # The deletion's compaction, on a client of its own: just before it writes the manifest, the
    # other compaction (everyone alive to it) writes one first.
    s3 = harness.local_stack.session().client("s3", endpoint_url=harness.local_stack.endpoint_url)
    raced: list[str] = []

    def other_compaction_first(params: dict[str, Any], **_: Any) -> None:
        if params["Key"] == writer.keys.manifest and not raced:
            raced.append(gallery(harness.s3).compact(lambda owners: set(owners), finished).snapshot)

    s3.meta.events.register("before-parameter-build.s3.PutObject", other_compaction_first)
    ours = gallery(s3).compact(lambda owners: {o for o in owners if o.person != LEAVER}, finished)

    assert raced and ours.snapshot != raced[0]
    assert {owner.person for owner in gallery(harness.s3).current().owners} == {STAYER}


def test_worker_log_lines_name_jobs_never_the_people_they_enroll_or_recognize(harness, caplog):
    with caplog.at_level(logging.INFO):
        enroll_both(harness)
        probe = harness.queue(photo_bytes("obama_and_biden.jpg"))
        harness.worker().run()
    assert harness.job(probe)["summary"]["identities"].count(LEAVER) == 1
    ours = [
        record
        for record in caplog.records
        if record.name.startswith(("facerec_worker", "chalicelib"))
    ]
    lines = [f"{record.getMessage()} {vars(record)!r}" for record in ours]
    assert any(probe in line for line in lines)
    assert naming(lines, LEAVER, LEAVER_NAME, STAYER, STAYER_NAME) == []
