"""Where local_service.moto_patches makes moto behave as AWS does: what the service relies on must
hold locally too."""

from __future__ import annotations

import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest

WRITERS = 16
ROUNDS = 30


@pytest.fixture
def eager_thread_switches():
    """Threads switch every microsecond instead of every 5 ms: moto's server runs in this process,
    so a race between its request threads shows in every run, not in one of a hundred."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_of_concurrent_conditional_writes_to_one_item_exactly_one_succeeds(
    local_stack, eager_thread_switches
):
    """The scale-up lease, the job claims and the gallery manifest rest on it: DynamoDB checks each
    condition against what the last write to the item left. moto's server, left alone, checks and
    writes in separate steps on a thread per request, and two writers both took the lease."""
    client = local_stack.client("dynamodb")
    table = f"fidelity-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # Looked up once: botocore builds a client's exception classes on first use, and threads racing
    # to it may each build their own, so that one thread's class does not catch another's error.
    conditional_failure = client.exceptions.ConditionalCheckFailedException

    def take(item: str, writer: int, barrier: threading.Barrier) -> bool:
        barrier.wait()
        try:
            client.update_item(
                TableName=table,
                Key={"name": {"S": item}},
                UpdateExpression="SET holder = :writer",
                ConditionExpression="attribute_not_exists(#name)",
                ExpressionAttributeNames={"#name": "name"},
                ExpressionAttributeValues={":writer": {"N": str(writer)}},
            )
        except conditional_failure:
            return False
        return True

    winners = []
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        for round_ in range(ROUNDS):
            barrier = threading.Barrier(WRITERS)
            winners.append(
                sum(pool.map(partial(take, f"lease-{round_}", barrier=barrier), range(WRITERS)))
            )
    assert winners == [1] * ROUNDS
