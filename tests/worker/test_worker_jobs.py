"""A worker against moto: what each kind of job ends as, and that nothing is done twice or lost."""

from __future__ import annotations

import io

from PIL import Image

from chalicelib.contract import JobKind, JobMessage, JobStatus

from .conftest import FACES, photo_bytes


def enroll(harness, person: str, photo: str) -> str:
    harness.add_person(person)
    return harness.queue(photo_bytes(photo), filename=photo, kind=JobKind.ENROLL, person=person)


def test_enrolled_people_are_named_and_a_stranger_is_unknown(harness):
    enrolled = enroll(harness, "obama", "obama.jpg")
    harness.worker().run()
    assert harness.job(enrolled)["status"] == JobStatus.DONE.value

    jobs = {
        name: harness.queue(photo_bytes(name), filename=name)
        for name in ("obama2.jpg", "biden.jpg")
    }
    harness.worker().run()
    assert [f["identity"] for f in harness.result(jobs["obama2.jpg"])["faces"]] == ["obama"]
    assert [f["identity"] for f in harness.result(jobs["biden.jpg"])["faces"]] == [None]
    assert harness.job(jobs["obama2.jpg"])["summary"]["identities"] == ["obama"]
    assert harness.messages_left() == 0


def test_each_named_face_carries_the_display_name_the_person_was_created_with(harness):
    harness.add_person("obama", "Barack Obama")
    harness.queue(
        photo_bytes("obama.jpg"), filename="obama.jpg", kind=JobKind.ENROLL, person="obama"
    )
    harness.worker().run()
    jobs = {
        name: harness.queue(photo_bytes(name), filename=name)
        for name in ("obama2.jpg", "biden.jpg")
    }
    harness.worker().run()
    (named,) = harness.result(jobs["obama2.jpg"])["faces"]
    (stranger,) = harness.result(jobs["biden.jpg"])["faces"]
    assert (named["identity"], named["display_name"]) == ("obama", "Barack Obama")
    assert (stranger["identity"], stranger["display_name"]) == (None, None)


def test_an_enrollment_result_names_the_model_and_the_detector_that_made_it(harness):
    enrolled = enroll(harness, "obama", "obama.jpg")
    harness.worker().run()
    document = harness.result(enrolled)
    assert (document["model"], document["detector"]) == (
        harness.engine.model,
        harness.engine.detector,
    )


def test_the_result_document_names_its_job_and_photo(harness):
    job_id = harness.queue(photo_bytes("obama2.jpg"), filename="obama2.jpg")
    harness.worker().run()
    document = harness.result(job_id)
    assert (document["job_id"], document["kind"], document["photo"]) == (
        job_id,
        "recognize",
        "obama2.jpg",
    )
    assert harness.job(job_id)["result_key"] == f"results/{job_id}.json"


def test_a_non_image_fails_with_the_reason_and_its_message_is_deleted(harness):
    job_id = harness.queue(b"%PDF-1.7 not a photo", filename="cv.pdf")
    harness.worker().run()
    job = harness.job(job_id)
    assert (job["status"], job["error"]) == (JobStatus.FAILED.value, "not_an_image")
    assert "JPEG, PNG or WebP" in job["cause"]
    assert harness.messages_left() == 0


def test_a_photo_without_a_face_is_done_with_zero_faces(harness):
    flags = Image.open(FACES / "obama_and_biden.jpg").crop((700, 0, 1300, 450))
    buffer = io.BytesIO()
    flags.save(buffer, "JPEG")
    job_id = harness.queue(buffer.getvalue(), filename="flags.jpg")
    harness.worker().run()
    assert harness.job(job_id)["status"] == JobStatus.DONE.value
    assert harness.result(job_id)["faces"] == []


def test_an_upload_over_the_size_limit_fails_even_though_moto_accepted_it(harness):
    job_id = harness.queue(
        photo_bytes("obama2.jpg") + b"\0" * (10 * 1024 * 1024), filename="big.jpg"
    )
    harness.worker().run()
    assert harness.job(job_id)["error"] == "upload_too_large"


def test_a_photo_that_vanished_fails_as_missing(harness):
    job_id = harness.queue(photo_bytes("obama2.jpg"))
    harness.s3.delete_object(
        Bucket=harness.stack.outputs["InputBucketName"], Key=f"uploads/{job_id}/photo.jpg"
    )
    harness.worker().run()
    assert harness.job(job_id)["error"] == "photo_missing"


def test_a_message_delivered_twice_gives_one_result(harness):
    job_id = harness.queue(photo_bytes("obama2.jpg"), filename="obama2.jpg")
    harness.send(
        JobMessage.from_json(
            harness.sqs.receive_message(QueueUrl=harness.queue_url, VisibilityTimeout=0)[
                "Messages"
            ][0]["Body"]
        )
    )
    worker = harness.worker(batch_size=1)
    worker.run()
    assert harness.job(job_id)["status"] == JobStatus.DONE.value
    versions = harness.s3.list_objects_v2(
        Bucket=harness.stack.outputs["OutputBucketName"], Prefix="results/"
    )
    assert [o["Key"] for o in versions["Contents"]] == [f"results/{job_id}.json"]
    assert harness.messages_left() == 0
    assert worker.batches == 2


def test_a_job_already_done_is_not_redone(harness):
    job_id = harness.queue(photo_bytes("obama2.jpg"), status=JobStatus.DONE)
    harness.worker().run()
    assert "result_key" not in harness.job(job_id)
    assert harness.messages_left() == 0


def test_a_job_that_keeps_failing_is_marked_failed_and_left_for_the_dead_letter_queue(harness):
    job_id = harness.queue(photo_bytes("obama2.jpg"))
    # A real failure inside the batch: the output bucket is gone, so the result cannot be written.
    output = harness.stack.outputs["OutputBucketName"]
    harness.s3.delete_bucket(Bucket=output)
    worker = harness.worker(visibility_extension_seconds=0, idle_seconds=0)
    worker.run()
    job = harness.job(job_id)
    assert (job["status"], job["error"]) == (JobStatus.FAILED.value, "worker_error")
    assert "gave up after 3 attempts" in job["cause"] and "NoSuchBucket" in job["cause"]
    dead = harness.sqs.receive_message(QueueUrl=harness.stack.outputs["JobsDeadLetterQueueUrl"])
    assert job_id in dead["Messages"][0]["Body"]


def test_an_idle_worker_terminates_its_own_instance(harness):
    worker = harness.worker(idle_seconds=0.5)
    harness.queue(photo_bytes("obama2.jpg"))
    worker.run()
    assert worker.lifecycle.state == "terminated"
    assert harness.instance_state(worker.settings.instance_id) in ("shutting-down", "terminated")


def test_a_stop_request_drains_and_ends_without_taking_work(harness):
    job_id = harness.queue(photo_bytes("obama2.jpg"))
    worker = harness.worker(idle_seconds=600)
    worker.request_stop()
    worker.run()
    assert worker.lifecycle.state == "terminated"
    assert harness.job(job_id)["status"] == JobStatus.QUEUED.value
    assert harness.messages_left() == 1


def test_a_failing_aws_call_keeps_the_worker_up_and_the_message_ends_in_the_dead_letter_queue(
    harness,
):
    job_id = harness.queue(photo_bytes("obama2.jpg"))
    # A real failure where the worker claims jobs, before any job is its own: the table is gone.
    harness.jobs.delete()
    worker = harness.worker(idle_seconds=0, visibility_extension_seconds=0)
    worker.run()
    assert worker.lifecycle.state == "terminated"  # it ended by idling, not by crashing
    assert worker.batches == 0
    dead = harness.sqs.receive_message(QueueUrl=harness.stack.outputs["JobsDeadLetterQueueUrl"])
    assert job_id in dead["Messages"][0]["Body"]
