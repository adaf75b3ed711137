"""`facerec redrive` against moto: a job in the jobs DLQ is counted, moved back, and then
finishes."""

from __future__ import annotations

import json

from control_plane import receive_all

from chalicelib.contract import JobStatus
from facerec_client import cli

from .conftest import photo_bytes


def _dead_letter_job(harness) -> str:
    """A job whose deliveries ran out, as on AWS: the worker gives up on its third delivery, records
    it FAILED, and SQS moves the message to the jobs DLQ (tests/worker/test_worker_jobs.py)."""
    job_id = harness.queue(photo_bytes("obama2.jpg"), filename="obama2.jpg")
    output = harness.stack.outputs["OutputBucketName"]
    harness.s3.delete_bucket(Bucket=output)
    harness.worker(visibility_extension_seconds=0, idle_seconds=0).run()
    harness.s3.create_bucket(Bucket=output)  # mended: the next attempt can succeed
    assert harness.job(job_id)["status"] == JobStatus.FAILED.value
    return job_id


def _depth(harness, output: str) -> int:
    url = harness.stack.outputs[output]
    attributes = harness.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"
    ]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _redrive(harness, monkeypatch, capsys, *options: str) -> list[str]:
    for name, value in harness.stack.app_environment().items():
        monkeypatch.setenv(name, value)
    assert cli.main(["redrive", "--stage-prefix", harness.stack.prefix, *options]) == 0
    return capsys.readouterr().out.splitlines()


def test_a_dry_run_counts_the_dead_lettered_job_and_moves_nothing(harness, monkeypatch, capsys):
    _dead_letter_job(harness)
    lines = _redrive(harness, monkeypatch, capsys, "--dry-run")
    prefix = harness.stack.prefix
    assert lines == [
        f"{prefix}-jobs-dlq: 1 message(s) would be moved back (dry run)",
        f"{prefix}-upload-events-dlq: 0 message(s) would be moved back (dry run)",
    ]
    assert (_depth(harness, "JobsDeadLetterQueueUrl"), harness.messages_left()) == (1, 0)


def test_a_redriven_job_is_taken_again_and_finishes_with_its_result(harness, monkeypatch, capsys):
    job_id = _dead_letter_job(harness)
    # Something that is not a job stays where someone can read it.
    harness.sqs.send_message(
        QueueUrl=harness.stack.outputs["JobsDeadLetterQueueUrl"], MessageBody="not a job"
    )
    lines = _redrive(harness, monkeypatch, capsys)
    assert lines[0] == (
        f"{harness.stack.prefix}-jobs-dlq: 1 message(s) moved back (receive, send, delete), "
        "1 job(s) requeued, 1 not a job and left there"
    )
    job = harness.job(job_id)
    assert job["status"] == JobStatus.QUEUED.value and "error" not in job and "worker_id" not in job
    assert harness.messages_left() == 1

    harness.worker().run()
    job = harness.job(job_id)
    assert job["status"] == JobStatus.DONE.value
    assert [face["identity"] for face in harness.result(job_id)["faces"]] == [None]
    assert job["result_key"] == f"results/{job_id}.json"
    assert harness.messages_left() == 0
    dead = harness.sqs.receive_message(
        QueueUrl=harness.stack.outputs["JobsDeadLetterQueueUrl"], WaitTimeSeconds=1
    )
    assert [m["Body"] for m in dead["Messages"]] == ["not a job"]


def test_upload_events_go_back_to_their_queue_without_a_move_task_on_moto(
    harness, monkeypatch, capsys, caplog
):
    names = harness.stack.prefix
    dead = harness.sqs.get_queue_url(QueueName=f"{names}-upload-events-dlq")["QueueUrl"]
    event = json.dumps(
        {
            "Records": [
                {"eventName": "ObjectCreated:Post", "s3": {"object": {"key": "uploads/x/p.jpg"}}}
            ]
        }
    )
    harness.sqs.send_message(QueueUrl=dead, MessageBody=event)
    with caplog.at_level("INFO", logger="facerec_client.redrive"):
        lines = _redrive(harness, monkeypatch, capsys)
    assert lines[1] == f"{names}-upload-events-dlq: 1 message(s) moved back (receive, send, delete)"
    assert any("no message move task here" in record.getMessage() for record in caplog.records)
    # Beside S3's own test event, sent when the bucket's notifications were set up.
    back = receive_all(harness.sqs, harness.stack.outputs["UploadEventsQueueUrl"])
    assert event in [m["Body"] for m in back]
