"""What local_service.moto_patches changes in moto to make it fast must leave moto's answers as they
were."""

from __future__ import annotations

import json
import uuid

from moto import backends
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.dynamodb.responses import DynamoResult

from local_service.account import ACCOUNT_ID, REGION

RETENTION_SECONDS = 60  # SQS's smallest retention period


def queue_with_one_message(local_stack) -> str:
    sqs = local_stack.client("sqs")
    url = sqs.create_queue(
        QueueName=f"speedups-{uuid.uuid4().hex[:8]}",
        Attributes={"MessageRetentionPeriod": str(RETENTION_SECONDS)},
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="a job")
    return url


def age_messages(url: str, seconds: int) -> None:
    """As if the queue's messages had been sent `seconds` ago (moto's server runs in this
    process)."""
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


def backend_queue(url: str):
    return backends.get_backend("sqs")[ACCOUNT_ID][REGION].queues[url.rsplit("/", 1)[1]]


def test_a_queues_attributes_read_one_by_one_are_what_moto_computes_for_all(local_stack):
    sqs = local_stack.client("sqs")
    dead_letters = sqs.create_queue(
        QueueName=f"speedups-dlq-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"}
    )
    dead_letters_arn = sqs.get_queue_attributes(
        QueueUrl=dead_letters["QueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=f"speedups-{uuid.uuid4().hex[:8]}.fifo",
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "true",
            "KmsMasterKeyId": "alias/aws/sqs",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letters_arn, "maxReceiveCount": 3}
            ),
            "DelaySeconds": "0",
        },
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="a job", MessageGroupId="g")
    queue = backend_queue(url)
    assert dict(queue.attributes) == type(queue.attributes).moto_attributes(queue)
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"] == {
        name: str(value)
        for name, value in type(queue.attributes).moto_attributes(queue).items()
        if value is not None
    }


def test_a_fifo_queue_with_content_based_deduplication_still_drops_a_repeated_body(local_stack):
    sqs = local_stack.client("sqs")
    url = sqs.create_queue(
        QueueName=f"speedups-{uuid.uuid4().hex[:8]}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody="the same job", MessageGroupId="g")
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"
    ]
    assert counts == {"ApproximateNumberOfMessages": "1"}


ITEM = {
    "text": {"S": "Paul"},
    "count": {"N": "3"},
    "seen": {"BOOL": True},
    "nothing": {"NULL": True},
    "faces": {"L": [{"M": {"identity": {"S": "paul"}, "distance": {"N": "0.41"}}}]},
    "tags": {"SS": ["a", "b"]},
    "sizes": {"NS": ["1", "2"]},
}


def item_answers(client, table: str) -> list[dict]:
    """What a client reads back from each item operation the service uses, and from an item
    with a binary attribute, on a new table."""
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    key = {"id": {"S": "job-1"}}
    answers = [
        client.put_item(TableName=table, Item={**key, **ITEM}, ReturnConsumedCapacity="TOTAL"),
        client.get_item(TableName=table, Key=key, ConsistentRead=True),
        client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET #c = #c + :one",
            ExpressionAttributeNames={"#c": "count"},
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        ),
        client.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": {"id": {"S": f"job-{i}"}, **ITEM}}} for i in range(2, 5)
                ]
            }
        ),
        client.batch_get_item(
            RequestItems={table: {"Keys": [{"id": {"S": f"job-{i}"}} for i in range(1, 6)]}}
        ),
        client.query(
            TableName=table,
            KeyConditionExpression="id = :id",
            ExpressionAttributeValues={":id": {"S": "job-2"}},
        ),
        client.scan(TableName=table, Limit=2),
        client.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": key}}]),
        client.put_item(
            TableName=table, Item={"id": {"S": "binary"}, "vector": {"B": b"\x00\x01\xff"}}
        ),
        client.get_item(TableName=table, Key={"id": {"S": "binary"}}),
        client.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD"),
    ]
    for answer in answers:
        answer.pop("ResponseMetadata")
    return answers


def test_dynamodb_item_answers_read_as_moto_serializes_them(local_stack, monkeypatch):
    client = local_stack.client("dynamodb")
    fast = item_answers(client, "speedups-items")
    monkeypatch.setattr(
        DynamoResult, "execute_result", DynamoResult.execute_result.moto_execute_result
    )
    as_moto = item_answers(client, "speedups-items-moto")
    assert json.loads(
        json.dumps(as_moto, default=repr).replace("speedups-items-moto", "speedups-items")
    ) == json.loads(json.dumps(fast, default=repr))


def test_an_update_expression_applied_again_with_other_values_updates_as_the_first_time(
    local_stack,
):
    """moto parses each distinct update expression once: the second request's values must not
    meet anything the first left in the tree."""
    client = local_stack.client("dynamodb")
    client.create_table(
        TableName="speedups-updates",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    expression = (
        "SET #s = :status, attempts = if_not_exists(attempts, :zero) + :one, "
        "tags = list_append(if_not_exists(tags, :none), :tag) REMOVE gone"
    )

    def update(job: str, status: str, tag: str) -> dict:
        return client.update_item(
            TableName="speedups-updates",
            Key={"id": {"S": job}},
            UpdateExpression=expression,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":status": {"S": status},
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":none": {"L": []},
                ":tag": {"L": [{"S": tag}]},
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]

    first = update("a", "PROCESSING", "x")
    second = update("a", "DONE", "y")
    other = update("b", "QUEUED", "z")
    assert UpdateExpressionParser.make(expression) is UpdateExpressionParser.make(expression)
    assert (first["status"], first["attempts"], first["tags"]) == (
        {"S": "PROCESSING"},
        {"N": "1"},
        {"L": [{"S": "x"}]},
    )
    assert (second["status"], second["attempts"], second["tags"]) == (
        {"S": "DONE"},
        {"N": "2"},
        {"L": [{"S": "x"}, {"S": "y"}]},
    )
    assert (other["status"], other["attempts"], other["tags"]) == (
        {"S": "QUEUED"},
        {"N": "1"},
        {"L": [{"S": "z"}]},
    )
