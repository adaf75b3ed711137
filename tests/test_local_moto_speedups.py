"""What infra.local changes in moto to make it fast must leave moto's answers as they were."""

from __future__ import annotations

import uuid

from moto import backends

from infra.local import ACCOUNT_ID, REGION

RETENTION_SECONDS = 60  # SQS's smallest retention period


def queue_with_one_message(local_stack) -> str:
    sqs = local_stack.client("sqs")
    url = sqs.create_queue(QueueName=f"speedups-{uuid.uuid4().hex[:8]}", Attributes={"MessageRetentionPeriod": str(RETENTION_SECONDS)})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="a job")
    return url


def age_messages(url: str, seconds: int) -> None:
    """As if the queue's messages had been sent `seconds` ago (moto's server runs in this process)."""
    queue = backends.get_backend("sqs")[ACCOUNT_ID][REGION].queues[url.rsplit("/", 1)[1]]
    for message in queue._messages:
        message.sent_timestamp -= seconds * 1000


def test_a_message_within_its_queues_retention_period_is_received(local_stack):
    url = queue_with_one_message(local_stack)
    age_messages(url, RETENTION_SECONDS - 10)
    messages = local_stack.client("sqs").receive_message(QueueUrl=url).get("Messages", [])
    assert [m["Body"] for m in messages] == ["a job"]


def test_a_message_past_its_queues_retention_period_is_not_handed_out(local_stack):
    url = queue_with_one_message(local_stack)
    age_messages(url, RETENTION_SECONDS + 10)
    assert local_stack.client("sqs").receive_message(QueueUrl=url).get("Messages", []) == []
