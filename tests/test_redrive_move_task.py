"""`facerec redrive`'s SQS message move task, which moto 5.2.5 lacks: botocore's Stubber answers as
SQS documents it (StartMessageMoveTask, then ListMessageMoveTasks until the task is no longer
RUNNING), and checks every request the redrive makes against the SQS model."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from facerec_client.redrive import DeadLetterQueue, Redrive, RedriveError

pytestmark = pytest.mark.control_plane

ARN = "arn:aws:sqs:us-east-1:111122223333:facerec-prod-upload-events-dlq"
QUEUE = DeadLetterQueue(
    "facerec-prod-upload-events-dlq",
    "https://sqs.us-east-1.amazonaws.com/111122223333/facerec-prod-upload-events-dlq",
    "https://sqs.us-east-1.amazonaws.com/111122223333/facerec-prod-upload-events",
    holds_jobs=False,
)


def _stubbed(final: dict) -> tuple[Redrive, Stubber]:
    sqs = boto3.client(
        "sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(sqs)
    stub.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": ARN}},
        {"QueueUrl": QUEUE.url, "AttributeNames": ["QueueArn"]},
    )
    stub.add_response("start_message_move_task", {"TaskHandle": "handle-1"}, {"SourceArn": ARN})
    running = {
        "Status": "RUNNING",
        "TaskHandle": "handle-1",
        "SourceArn": ARN,
        "ApproximateNumberOfMessagesMoved": 1,
    }
    stub.add_response(
        "list_message_move_tasks", {"Results": [running]}, {"SourceArn": ARN, "MaxResults": 1}
    )
    stub.add_response(
        "list_message_move_tasks",
        {"Results": [{"SourceArn": ARN, **final}]},
        {"SourceArn": ARN, "MaxResults": 1},
    )
    stub.activate()
    return Redrive(sqs, jobs_table=None, sleep=lambda seconds: None), stub


def test_upload_events_go_back_by_the_move_task_and_its_count_is_reported():
    redrive, stub = _stubbed({"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 3})
    moved = redrive.move(QUEUE)
    assert (moved.messages, moved.how) == (3, "SQS message move task")
    stub.assert_no_pending_responses()


def test_a_move_task_that_fails_says_why_and_what_to_do():
    redrive, _ = _stubbed(
        {
            "Status": "FAILED",
            "FailureReason": "AWS.SimpleQueueService.AccessDenied",
            "ApproximateNumberOfMessagesMoved": 1,
        }
    )
    with pytest.raises(
        RedriveError,
        match=(
            r"ended FAILED: AWS.SimpleQueueService.AccessDenied \(1 moved\); "
            r"run facerec redrive again"
        ),
    ):
        redrive.move(QUEUE)
