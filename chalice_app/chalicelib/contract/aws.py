"""AWS's answers read in one place: error codes, paging through DynamoDB scans and batch reads, and
S3's batch deletes, whose refusals come back in a 200.

Modeled exceptions (`client.exceptions.ConditionalCheckFailedException`) are not enough here: S3
answers a HEAD of a missing key with a bare "404", and the simulator's stand-ins raise plain
ClientErrors, so codes are read off the ClientError, here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

__all__ = [
    "THROTTLED",
    "ObjectsNotDeletedError",
    "batch_get_all",
    "delete_objects",
    "error_code",
    "is_conditional_failure",
    "is_missing",
    "is_missing_object",
    "queue_backlog",
    "scan_all",
    "scan_pages",
]

# How S3 says a key or bucket is not there: a HEAD has no body, so only the status comes back.
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED = frozenset({"403", "AccessDenied"})
# The jobs queue's messages that still need a worker: waiting, in flight (a worker holds them until
# it deletes them), or delayed. One count for the scaler, the seed route's outlook and a worker's
# idle check.
_BACKLOG = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
# DynamoDB's and EC2's ways of saying "slow down".
THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)


def error_code(exc: ClientError) -> str:
    """The error's code ("" when AWS sent none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_conditional_failure(exc: ClientError) -> bool:
    """A DynamoDB write refused by its ConditionExpression: the record was not in the state asked
    for."""
    return error_code(exc) == "ConditionalCheckFailedException"


def is_missing(exc: ClientError) -> bool:
    """An S3 key (or its bucket) that does not exist."""
    return error_code(exc) in _MISSING


def is_missing_object(s3: Any, bucket: str, key: str, exc: ClientError) -> bool:
    """Whether a GET or HEAD of `key` failed because the key does not exist.

    S3 answers a missing key with 404 only to a caller whose s3:ListBucket covers the request. The
    workers' ListBucket is limited by s3:prefix (infra/template.yaml), a condition a GET or HEAD
    does not carry, so a missing key may come back as 403: a listing of the key itself, which that
    grant allows, settles it. Anything else, or a listing refused too, is a real error.
    """
    if is_missing(exc):
        return True
    if error_code(exc) not in _DENIED:
        return False
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    return all(item["Key"] != key for item in listed.get("Contents", []))


def scan_pages(table: Any, **kwargs: Any) -> Iterator[list[dict[str, Any]]]:
    """A table resource's scan, each page's items as it is read."""
    while True:
        page = table.scan(**kwargs)
        yield page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def scan_all(table: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of a table resource's scan, page after page."""
    return [item for items in scan_pages(table, **kwargs) for item in items]


# BatchGetItem's most keys per call.
_BATCH_GET_LIMIT = 100


def batch_get_all(table: Any, keys: list[dict[str, Any]], **request: Any) -> list[dict[str, Any]]:
    """The items of a table resource with these keys, read consistently, 100 keys a call; keys
    DynamoDB did not get to (throttling, the 16 MB cap) are asked again. `request` adds to each
    table's request (ProjectionExpression, ExpressionAttributeNames)."""
    client, items = table.meta.client, []
    for start in range(0, len(keys), _BATCH_GET_LIMIT):
        pending = {
            table.name: {
                "Keys": keys[start : start + _BATCH_GET_LIMIT],
                "ConsistentRead": True,
                **request,
            }
        }
        while pending:
            response = client.batch_get_item(RequestItems=pending)
            items += response["Responses"].get(table.name, [])
            pending = response.get("UnprocessedKeys") or {}
    return items


# S3's DeleteObjects takes at most this many keys a call.
_DELETE_BATCH = 1000
# Calls for the keys a DeleteObjects answered with an error (S3 names SlowDown and InternalError
# per key), before the keys still there are raised.
_DELETE_ATTEMPTS = 3


class ObjectsNotDeletedError(RuntimeError):
    """Keys S3 would not delete, with its code for each, after every attempt."""

    def __init__(self, bucket: str, errors: dict[str, str]) -> None:
        super().__init__(
            f"{len(errors)} objects of {bucket} not deleted: {sorted(set(errors.values()))}"
        )
        self.errors = errors


def delete_objects(s3: Any, bucket: str, keys: list[str]) -> None:
    """Delete every key, 1,000 a call. DeleteObjects answers 200 even when it deleted nothing, and
    names each key it failed on in `Errors`: those are asked again, and raised when they stay.
    A key that is not there counts as deleted, as S3 itself counts it."""
    for start in range(0, len(keys), _DELETE_BATCH):
        pending = keys[start : start + _DELETE_BATCH]
        errors: dict[str, str] = {}
        for _ in range(_DELETE_ATTEMPTS):
            response = s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in pending], "Quiet": True}
            )
            errors = {error["Key"]: error.get("Code", "") for error in response.get("Errors", [])}
            pending = list(errors)
            if not pending:
                break
        if errors:
            raise ObjectsNotDeletedError(bucket, errors)


def queue_backlog(sqs: Any, queue_url: str) -> int:
    """The queue's messages that still need a worker (`_BACKLOG`); an attribute SQS leaves out
    counts 0."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(_BACKLOG))[
        "Attributes"
    ]
    return sum(int(attributes.get(name, 0)) for name in _BACKLOG)
