"""In-memory stand-ins for the two AWS clients the real scale-up task needs besides EC2.

`ScaleUp` reads the jobs queue's backlog from SQS and takes its lease with one conditional
DynamoDB write; these answer those exact calls from the simulation's state, at simulated time.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Callable

from botocore.exceptions import ClientError

__all__ = ["LeaseTable", "QueueAttributes"]


class QueueAttributes:
    """`get_queue_attributes` answered from callables that read the simulated queue."""

    def __init__(self, visible: Callable[[], int], in_flight: Callable[[], int]) -> None:
        self._visible = visible
        self._in_flight = in_flight
        self.calls = 0

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        return {
            "Attributes": {
                "ApproximateNumberOfMessages": str(self._visible()),
                "ApproximateNumberOfMessagesNotVisible": str(self._in_flight()),
            }
        }


class LeaseTable:
    """The leases table's one item: the read and the updates chalicelib.scaling.Lease makes.

    Taking the lease is the write with `:expires`: it holds only when the item is absent or has
    expired, as the real ConditionExpression says, and creates the `fleet` ledger. Releasing is
    the write with `:end`, held by the holder's `:token`. Every other write sets (`#sN`) and
    removes (`#rN`) ledger entries path by path, while `:holder` still holds the lease when given.
    """

    def __init__(self) -> None:
        self.item: dict[str, Any] = {}
        self.reads = 0
        self.writes = 0

    def get_item(self, **_: Any) -> dict[str, Any]:
        self.reads += 1
        return {"Item": copy.deepcopy(self.item)} if self.item else {}

    def update_item(  # noqa: N803 (boto3's argument names)
        self,
        *,
        UpdateExpression: str,
        ExpressionAttributeValues: dict[str, Any] | None = None,
        ExpressionAttributeNames: dict[str, str] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        self.writes += 1
        values, names = ExpressionAttributeValues or {}, ExpressionAttributeNames or {}
        if ":expires" in values:
            if self.item and self.item["expires_ms"] > values[":now"]:
                raise _conditional_failure()
            self.item.update(holder=values[":token"], acquired_ms=values[":now"], expires_ms=values[":expires"])
            self.item.setdefault("fleet", {})
        elif ":end" in values:
            if self.item.get("holder") != values[":token"]:
                raise _conditional_failure()
            self.item["expires_ms"] = values[":end"]
        else:
            if ":holder" in values and self.item.get("holder") != values[":holder"]:
                raise _conditional_failure()
            fleet = self.item.setdefault("fleet", {})
            for placeholder, key in names.items():
                if placeholder.startswith("#s"):
                    fleet[key] = copy.deepcopy(values[f":s{placeholder[2:]}"])
                elif placeholder.startswith("#r"):
                    fleet.pop(key, None)
            if re.search(r"REMOVE .*\blaunches\b", UpdateExpression):
                self.item.pop("launches", None)
        return {"Attributes": copy.deepcopy(self.item)}


def _conditional_failure() -> ClientError:
    return ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "UpdateItem")
