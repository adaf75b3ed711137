"""The gallery in S3 as workers share it: appended enrollments, retried ones, snapshots, deletion,
migration, and objects that cannot be read."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from bench.face_stats import FaceStats
from chalicelib.compactions import Compactions
from chalicelib.config import Settings
from chalicelib.contract import (
    JobKind,
    JobMessage,
    JobStatus,
    legacy_gallery_key,
    result_key,
    upload_key,
)
from chalicelib.contract.telemetry import METRIC_FIELD, Metric
from chalicelib.erasure import PersonEraser
from chalicelib.jobs import JobStore
from chalicelib.people import PeopleStore
from facerec_worker.engine import GalleryError, Owner, PhotoInput
from facerec_worker.gallery_store import (
    LATEST,
    QUARANTINE,
    SETTLE_SECONDS,
    Compaction,
    GalleryStore,
    stamp,
)
from facerec_worker.ledger import JobLedger
from facerec_worker.metrics import MetricsPublisher
from facerec_worker.people import PeopleDirectory
from local_service.moto_process import MotoProcess

from .conftest import photo_bytes


def identities(harness, job_id):
    return [face["identity"] for face in harness.result(job_id)["faces"]]


def store(harness, dimensions=128, **kwargs) -> GalleryStore:
    engine = harness.engine
    return GalleryStore(
        harness.s3,
        harness.stack.outputs["OutputBucketName"],
        model=engine.model,
        detector=engine.detector,
        dimensions=dimensions,
        **kwargs,
    )


def watched_store(harness) -> tuple[GalleryStore, Any, list[str]]:
    """A worker's store on an S3 client of its own, that client, and the operations it sends from
    now on (botocore's before-call event: each request as it leaves)."""
    s3 = harness.local_stack.client("s3")
    sent: list[str] = []
    s3.meta.events.register("before-call.s3", lambda model, **_: sent.append(model.name))
    engine = harness.engine
    reader = GalleryStore(
        s3,
        harness.stack.outputs["OutputBucketName"],
        model=engine.model,
        detector=engine.detector,
        dimensions=128,
    )
    return reader, s3, sent


def vector(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(128).astype(np.float32)


def ledger(harness) -> JobLedger:
    """The jobs table as a worker's ledger reads it; nothing here flushes its metrics."""
    return JobLedger(harness.jobs, "i-test-compactor", metrics=MetricsPublisher("facerec-test"))


def compact_through(harness, cut: float) -> Compaction:
    """A compaction as a COMPACT job runs it, at SETTLE_SECONDS past `cut`: the changes stamped
    before `cut` have settled."""
    return store(harness, clock=lambda: cut + SETTLE_SECONDS).compact(
        PeopleDirectory(harness.people).alive, ledger(harness).finished_before
    )


def change_keys(harness) -> list[str]:
    listed = harness.s3.list_objects_v2(
        Bucket=harness.stack.outputs["OutputBucketName"], Prefix=store(harness).keys.changes
    )
    return [item["Key"] for item in listed.get("Contents", [])]


def enroll_then_die_before_done(harness, person: str, photo: str) -> str:
    """An enrollment job run to the end, then put back as a worker that died after enrolling and
    counting, short of its result and DONE, leaves it: PROCESSING under a dead worker's claim,
    gone stale (its count, and the job's removal from the person's uncounted enrollments, stay as
    that worker wrote them)."""
    harness.add_person(person)
    job_id = harness.queue(photo_bytes(photo), filename=photo, kind=JobKind.ENROLL, person=person)
    harness.worker().run()
    harness.jobs.update_item(
        Key={"job_id": job_id},
        UpdateExpression=(
            "SET #status = :processing, worker_id = :dead, claimed_epoch = :long_ago "
            "REMOVE finished_at, result_key, summary"
        ),
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":processing": JobStatus.PROCESSING.value,
            ":dead": "i-dead/1",
            ":long_ago": 0,
        },
    )
    harness.s3.delete_object(
        Bucket=harness.stack.outputs["OutputBucketName"], Key=result_key(job_id)
    )
    return job_id


def deliver_again(harness, job_id: str, person: str, photo: str) -> None:
    """The job's message back on the queue, for a worker to take over the dead one's stale claim."""
    bucket = harness.stack.outputs["InputBucketName"]
    harness.send(
        JobMessage(
            job_id=job_id,
            kind=JobKind.ENROLL,
            bucket=bucket,
            key=upload_key(job_id, photo),
            person=person,
        )
    )


def services(harness):
    """The API's own people store and eraser, on the harness's stack."""
    settings = Settings.from_env(harness.stack.app_environment())
    jobs = JobStore(harness.jobs)
    people = PeopleStore(harness.people)
    return people, PersonEraser(
        people, jobs, Compactions(jobs, harness.sqs, harness.s3, settings), harness.s3, settings
    )


def test_a_deleted_then_recreated_id_matches_nobody(harness):
    people, eraser = services(harness)
    people.create("obama", "Barack Obama")
    harness.queue(
        photo_bytes("obama.jpg"), filename="obama.jpg", kind=JobKind.ENROLL, person="obama"
    )
    harness.worker().run()
    before = harness.queue(photo_bytes("obama2.jpg"))
    harness.worker().run()
    assert identities(harness, before) == ["obama"]

    eraser.erase("obama")
    people.create("obama", "Someone Else")
    # The worker that runs next starts with the deletion's compaction queued but not yet done:
    # the record alone must stop the old face.
    after = harness.queue(photo_bytes("obama2.jpg"))
    harness.worker().run()
    assert identities(harness, after) == [None]


def test_a_face_of_a_person_deleted_since_it_was_loaded_is_not_named_by_a_running_worker(harness):
    harness.add_person("obama")
    harness.add_person("biden")
    for person, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg")):
        harness.queue(photo_bytes(photo), filename=photo, kind=JobKind.ENROLL, person=person)
    worker = harness.worker()
    worker.run()
    harness.people.delete_item(Key={"person_id": "obama"})
    jobs = [harness.queue(photo_bytes(name)) for name in ("obama2.jpg", "biden.jpg")]
    harness.worker().run()
    assert [identities(harness, job) for job in jobs] == [[None], ["biden"]]


def test_deleting_a_person_removes_their_photos_results_records_and_faces(harness):
    people, eraser = services(harness)
    people.create("obama", "Barack Obama")
    people.create("biden", "Joe Biden")
    jobs = {}
    for person, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg")):
        jobs[person] = harness.queue(
            photo_bytes(photo), filename=photo, kind=JobKind.ENROLL, person=person
        )
    harness.worker().run()
    input_bucket, output_bucket = (
        harness.stack.outputs["InputBucketName"],
        harness.stack.outputs["OutputBucketName"],
    )

    eraser.erase("obama")
    uploads = [
        o["Key"] for o in harness.s3.list_objects_v2(Bucket=input_bucket).get("Contents", [])
    ]
    results = [
        o["Key"]
        for o in harness.s3.list_objects_v2(Bucket=output_bucket, Prefix="results/").get(
            "Contents", []
        )
    ]
    assert uploads == [f"uploads/{jobs['biden']}/biden.jpg"]
    assert results == [f"results/{jobs['biden']}.json"]
    assert "Item" not in harness.jobs.get_item(Key={"job_id": jobs["obama"]})

    # The compaction the deletion queued: the faces leave the gallery's objects too.
    harness.worker().run()
    reader = store(harness)
    assert {o.person for o in reader.current().owners} == {"biden"}
    changes = harness.s3.list_objects_v2(Bucket=output_bucket, Prefix=reader.keys.changes).get(
        "Contents", []
    )
    assert all(jobs["obama"] not in change["Key"] for change in changes)
    compaction = harness.jobs.scan(
        FilterExpression="kind = :k", ExpressionAttributeValues={":k": "compact"}
    )["Items"]
    assert [job["status"] for job in compaction] == [JobStatus.DONE.value]


def test_concurrent_enrollments_by_several_workers_lose_none(harness):
    stores = [store(harness) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((len(stores), 25, 128)).astype(np.float32)

    def enroll_all(index):
        barrier.wait()
        for n, vector in enumerate(vectors[index]):
            stores[index].append(Owner(f"p{index}-{n}", "i"), vector, f"job-{index}-{n}-padding-xx")

    threads = [threading.Thread(target=enroll_all, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({o.person for o in store(harness).current().owners}) == 100


def test_a_running_worker_reads_one_object_a_batch_until_an_enrollment_or_a_compaction_is_written(
    harness,
):
    store(harness).append(Owner("first", "i"), vector(1), "job-first-padding-xxxxxxx")
    reader, _, sent = watched_store(harness)
    assert len(reader.current()) == 1
    sent.clear()
    assert len(reader.current()) == 1
    assert sent == ["GetObject"]  # `latest`, answered 304: no manifest, no LIST

    store(harness).append(Owner("second", "i"), vector(2), "job-second-padding-xxxxxx")
    sent.clear()
    assert {o.person for o in reader.current().owners} == {"first", "second"}
    assert sent.count("ListObjectsV2") == 1

    # Jobs without records read as finished, and everyone is alive: both changes are folded.
    compacting = store(harness, clock=lambda: time.time() + SETTLE_SECONDS + 1)
    assert (
        compacting.compact(
            lambda everyone: set(everyone), ledger(harness).finished_before
        ).folded_changes
        == 2
    )
    assert change_keys(harness) == []
    sent.clear()
    assert {o.person for o in reader.current().owners} == {
        "first",
        "second",
    }  # from the new snapshot
    assert sent.count("GetObject") == 3  # `latest`, the manifest, the snapshot
    sent.clear()
    reader.current()
    assert sent == ["GetObject"]


def test_a_gallery_from_before_latest_gets_it_at_its_first_read_and_is_not_listed_again(harness):
    writer = store(harness)
    bucket, latest = harness.stack.outputs["OutputBucketName"], f"{writer.keys.prefix}{LATEST}"
    # A change as a worker from before `latest` wrote one: the change alone.
    writer.append(Owner("old", "i"), vector(1), "job-old-padding-xxxxxxxxx")
    harness.s3.delete_object(Bucket=bucket, Key=latest)

    reader, _, sent = watched_store(harness)
    assert len(reader.current()) == 1
    assert sent.index("PutObject") < sent.index("ListObjectsV2")  # marked before it lists
    sent.clear()

    assert len(reader.current()) == 1
    assert sent == ["GetObject"]


def test_after_a_gallery_read_failed_the_next_batch_lists_again(harness):
    reader, s3, _ = watched_store(harness)
    assert len(reader.current()) == 0
    store(harness).append(Owner("obama", "i"), vector(1), "job-obama-padding-xxxxxxx")
    refusals = [
        ClientError(
            {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}},
            "ListObjectsV2",
        )
    ]

    def refuse_once(**_) -> None:
        if refusals:
            raise refusals.pop()

    s3.meta.events.register("before-call.s3.ListObjectsV2", refuse_once)
    with pytest.raises(ClientError):
        reader.current()  # `latest` changed, then the LIST failed: the batch fails
    assert len(reader.current()) == 1


@pytest.fixture
def moto_apart(tmp_path):
    """moto's server in a process of its own: 10,000 PUTs from 16 threads crawl when the server
    shares the test's interpreter lock, as the in-process one does."""
    moto = MotoProcess("127.0.0.1", None, stage_prefix="facerec-gallery-10k", log_dir=tmp_path)
    moto.start()
    try:
        moto.client("s3").create_bucket(Bucket="facerec-gallery-10k")
        yield moto
    finally:
        moto.stop()


@pytest.mark.slow
def test_a_worker_started_after_ten_thousand_enrollments_matches_every_one(moto_apart):
    """Synthetic unit vectors from 16 writers; a compaction after 9,000 (its clock past the settling
    time, so it folds them all), so the new worker reads a snapshot and 1,000 changes."""
    s3 = moto_apart.client("s3")

    def gallery(**kwargs) -> GalleryStore:
        return GalleryStore(
            s3, "facerec-gallery-10k", model="dlib", detector="yunet", dimensions=128, **kwargs
        )

    rng = np.random.default_rng(7)
    faces = rng.standard_normal((10_000, 128)).astype(np.float32)
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)
    writers = [gallery() for _ in range(16)]
    owners = [Owner(f"p{n}", "i") for n in range(len(faces))]

    def enroll(n):
        writers[n % len(writers)].append(owners[n], faces[n], f"job-{n:05d}-padding-xxxx")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(enroll, range(9_000)))
        # No jobs table here: every job reads as finished, as one whose record is gone does.
        compaction = gallery(clock=lambda: time.time() + SETTLE_SECONDS + 1).compact(
            lambda everyone: set(everyone),
            lambda jobs, cutoff: set(jobs),
        )
        list(pool.map(enroll, range(9_000, 10_000)))
    assert (compaction.faces, compaction.folded_changes) == (9_000, 9_000)
    index = gallery().current()
    assert len(index) == 10_000
    noise = rng.standard_normal(faces.shape).astype(np.float32)
    queries = faces + 0.45 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    found = [
        c[0].owner.person
        for start in range(0, 10_000, 500)
        for c in index.neighbours(queries[start : start + 500], 0.6)
    ]
    assert found == [o.person for o in owners]


def test_the_old_json_gallery_is_migrated_on_first_load(harness):
    legacy = harness.engine.new_gallery()
    harness.engine.enroll(legacy, "obama", [PhotoInput("o.jpg", photo_bytes("obama.jpg"))])
    bucket = harness.stack.outputs["OutputBucketName"]
    harness.s3.put_object(
        Bucket=bucket, Key=legacy_gallery_key(legacy.model), Body=legacy.to_bytes()
    )
    harness.add_person("obama")
    job = harness.queue(photo_bytes("obama2.jpg"))
    harness.worker().run()
    assert identities(harness, job) == ["obama"]
    keys = [
        o["Key"] for o in harness.s3.list_objects_v2(Bucket=bucket, Prefix="gallery/")["Contents"]
    ]
    assert legacy_gallery_key(legacy.model) not in keys
    assert store(harness).keys.manifest in keys


def test_a_worker_of_another_detector_says_which_gallery_it_does_not_match(harness, caplog):
    store(harness).append(
        Owner("obama", "legacy"), np.zeros(128, dtype=np.float32), "job-of-this-detector-xxxx"
    )
    other_detector = "mtcnn" if harness.engine.detector != "mtcnn" else "yunet"
    other = GalleryStore(
        harness.s3,
        harness.stack.outputs["OutputBucketName"],
        model=harness.engine.model,
        detector=other_detector,
        dimensions=128,
    )
    with caplog.at_level("WARNING", logger="facerec_worker.gallery_store"):
        assert len(other.current()) == 0
    assert f"{store(harness).keys.prefix} hold faces of another model or detector" in caplog.text
    assert "FACEREC_DETECTOR" in caplog.text


def test_an_enrollment_stored_twice_by_a_retried_job_counts_once(harness):
    """The job's worker died after writing its change and before recording it DONE, so the
    redelivery wrote the same face again under a later stamp."""
    now = time.time()
    face = np.random.default_rng(3).standard_normal(128).astype(np.float32)
    for seconds_later in (0.0, 5.0):
        store(harness, clock=lambda later=seconds_later: now + later).append(
            Owner("obama", "i"), face, "job-retried-padding-xxxx"
        )
    assert len(store(harness).current()) == 1
    # The job has no record (gone, as a finished job's may be), so nothing can run it again.
    compaction = store(harness, clock=lambda: now + SETTLE_SECONDS + 10).compact(
        lambda everyone: set(everyone), ledger(harness).finished_before
    )
    assert (compaction.faces, compaction.folded_changes) == (1, 2)
    assert len(store(harness).current()) == 1


def test_an_enrollment_run_again_after_its_worker_died_counts_its_photo_once(harness):
    job_id = enroll_then_die_before_done(harness, "obama", "obama.jpg")

    deliver_again(harness, job_id, "obama", "obama.jpg")
    harness.worker().run()

    assert harness.job(job_id)["status"] == JobStatus.DONE.value
    assert (
        harness.people.get_item(Key={"person_id": "obama"}, ConsistentRead=True)["Item"][
            "photos_enrolled"
        ]
        == 1
    )
    assert harness.result(job_id)["photos_enrolled"] == 1


def test_an_enrollment_run_again_after_a_compaction_leaves_one_face_that_is_still_named(harness):
    job_id = enroll_then_die_before_done(harness, "obama", "obama.jpg")
    compact_through(harness, time.time())

    deliver_again(harness, job_id, "obama", "obama.jpg")
    harness.worker().run()

    index = store(harness).current()
    assert [owner.person for owner in index.owners] == ["obama"] and len(index) == 1
    probe = harness.queue(photo_bytes("obama2.jpg"), filename="obama2.jpg")
    harness.worker().run()
    assert identities(harness, probe) == ["obama"]


def test_a_compaction_leaves_the_change_of_a_running_job_and_folds_it_once_the_job_is_done(harness):
    job_id = enroll_then_die_before_done(harness, "obama", "obama.jpg")
    (first_change,) = change_keys(harness)

    while_running = compact_through(harness, time.time())
    assert (while_running.folded_changes, while_running.pending_changes) == (0, 1)
    assert change_keys(harness) == [first_change]

    deliver_again(harness, job_id, "obama", "obama.jpg")
    harness.worker().run()
    assert harness.job(job_id)["status"] == JobStatus.DONE.value
    once_done = compact_through(harness, time.time())
    # The retry's own change of the same face too: both folded, as one face.
    assert (once_done.faces, once_done.folded_changes, once_done.pending_changes) == (1, 2, 0)
    assert change_keys(harness) == []


def put_garbage_change(harness) -> str:
    """An object under changes/ that is no face index; its key."""
    key = store(harness).keys.change(stamp(time.time()), "job-garbage-padding-xxxxxx")
    harness.s3.put_object(
        Bucket=harness.stack.outputs["OutputBucketName"], Key=key, Body=b"not a face index"
    )
    return key


def counted_unreadable(caplog) -> list[str]:
    """The gallery objects the log lines counted by the GalleryObjectsQuarantined metric filter
    name."""
    metric = Metric.GALLERY_OBJECTS_QUARANTINED.value
    return [
        record.gallery_object
        for record in caplog.records
        if getattr(record, METRIC_FIELD, None) == metric
    ]


def compact_everyone(harness) -> Compaction:
    """A compaction past the settling time of every change so far; everyone alive, every job
    finished."""
    compacting = store(harness, clock=lambda: time.time() + SETTLE_SECONDS + 1)
    return compacting.compact(lambda everyone: set(everyone), ledger(harness).finished_before)


def quarantined_body(harness, change_key: str) -> bytes:
    keys = store(harness).keys
    aside = f"{keys.prefix}{QUARANTINE}{change_key[len(keys.changes) :]}"
    return harness.s3.get_object(Bucket=harness.stack.outputs["OutputBucketName"], Key=aside)[
        "Body"
    ].read()


def test_a_change_that_cannot_be_read_is_quarantined_and_recognition_goes_on(harness, caplog):
    harness.add_person("obama")
    harness.queue(
        photo_bytes("obama.jpg"), filename="obama.jpg", kind=JobKind.ENROLL, person="obama"
    )
    harness.worker().run()
    garbage = put_garbage_change(harness)

    probe = harness.queue(photo_bytes("obama2.jpg"), filename="obama2.jpg")
    with caplog.at_level("ERROR", logger="facerec_worker.gallery_store"):
        harness.worker().run()

    assert harness.job(probe)["status"] == JobStatus.DONE.value
    assert identities(harness, probe) == ["obama"]
    assert garbage not in change_keys(harness)
    assert quarantined_body(harness, garbage) == b"not a face index"
    assert counted_unreadable(caplog) == [garbage]


def test_a_compaction_sets_a_change_that_cannot_be_read_aside_and_folds_the_rest(harness, caplog):
    store(harness).append(Owner("obama", "i"), vector(1), "job-obama-padding-xxxxxxx")
    garbage = put_garbage_change(harness)

    with caplog.at_level("ERROR", logger="facerec_worker.gallery_store"):
        compaction = compact_everyone(harness)

    assert (compaction.faces, compaction.folded_changes, compaction.quarantined_changes) == (
        1,
        1,
        1,
    )
    assert change_keys(harness) == []
    assert quarantined_body(harness, garbage) == b"not a face index"
    assert counted_unreadable(caplog) == [garbage]
    assert [owner.person for owner in store(harness).current().owners] == ["obama"]


def test_a_worker_keeps_the_gallery_it_holds_when_the_new_snapshot_cannot_be_read(harness, caplog):
    store(harness).append(Owner("obama", "i"), vector(1), "job-obama-padding-xxxxxxx")
    running = store(harness)
    assert len(running.current()) == 1
    snapshot = compact_everyone(harness).snapshot
    bucket = harness.stack.outputs["OutputBucketName"]
    harness.s3.put_object(Bucket=bucket, Key=snapshot, Body=b"not a face index")
    store(harness).append(Owner("biden", "i"), vector(2), "job-biden-padding-xxxxxxx")

    with caplog.at_level("ERROR", logger="facerec_worker.gallery_store"):
        # The worker that held the old snapshot's faces keeps them, and takes the changes after.
        assert {owner.person for owner in running.current().owners} == {"obama", "biden"}
        # One with nothing to keep fails its batch, and a compaction keeps the snapshot there is.
        with pytest.raises(GalleryError):
            store(harness).current()
        with pytest.raises(GalleryError):
            compact_everyone(harness)
    assert counted_unreadable(caplog) == [snapshot] * 3
    assert (
        json.loads(
            harness.s3.get_object(Bucket=bucket, Key=store(harness).keys.manifest)["Body"].read()
        )["snapshot"]
        == snapshot
    )


def test_a_change_another_reader_set_aside_after_it_was_listed_is_skipped_without_a_reload(harness):
    store(harness).append(Owner("obama", "i"), vector(1), "job-obama-padding-xxxxxxx")
    garbage = put_garbage_change(harness)
    # A client of its own: the stack's is shared, and the other reader below must not meet the hook.
    s3 = harness.local_stack.session().client("s3", endpoint_url=harness.local_stack.endpoint_url)
    reader = GalleryStore(
        s3,
        harness.stack.outputs["OutputBucketName"],
        model=harness.engine.model,
        detector=harness.engine.detector,
        dimensions=128,
    )
    sent: list[str] = []
    s3.meta.events.register("before-call.s3", lambda model, **_: sent.append(model.name))

    def another_reader_first(params: dict[str, Any], **_: Any) -> None:
        if params["Key"] == garbage:
            store(harness).current()

    s3.meta.events.register("before-parameter-build.s3.GetObject", another_reader_first)
    assert [owner.person for owner in reader.current().owners] == ["obama"]
    # The first read's two (a look for other galleries, the changes); a reload would list both
    # again.
    assert sent.count("ListObjectsV2") == 2


def test_a_person_deleted_before_a_compaction_is_gone_from_the_snapshots_ann_index(harness):
    stats = FaceStats.load("dlib")
    drawn = stats.draw(np.random.default_rng(3), 2000)
    everyone = store(harness).empty()
    everyone.add_each([Owner(f"drawn{n}", "i") for n in range(len(drawn))], drawn)
    obama = [
        v for person, v in zip(stats.people, stats.embeddings, strict=True) if person == "obama"
    ]
    everyone.add(Owner("obama", "i"), obama[0])
    store(harness).publish(everyone, "", None)
    [[before, *_]] = store(harness).current().neighbours(obama[1], 0.6)
    assert before.owner.person == "obama"

    compacting = store(harness, ann_from_faces=1000, clock=lambda: time.time() + SETTLE_SECONDS)
    compacting.compact(
        lambda owners: {o for o in owners if o.person != "obama"}, ledger(harness).finished_before
    )

    snapshot = store(harness).current()
    assert snapshot.ann is not None and len(snapshot.ann) == len(snapshot) == 2000
    assert Owner("obama", "i") not in snapshot.owners
    [[after, *_]] = snapshot.neighbours(obama[1], 0.6)
    assert after.owner.person.startswith("drawn")
