"""In-memory stand-ins for the two AWS clients the real scale-up task needs besides EC2.

`ScaleUp` reads the jobs queue's backlog from SQS and takes its lease with one conditional
DynamoDB write; these answer those exact calls from the simulation's state, at simulated time.
"""

from __future__ import annotations

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
    """The leases table's one item: the read and the two updates chalicelib.scaling.Lease makes.

    Taking the lease is the write with `:expires`: it holds only when the item is absent or has
    expired, as the real ConditionExpression says. Recording launches sets `launches`.
    """

    def __init__(self) -> None:
        self.item: dict[str, Any] = {}
        self.reads = 0
        self.writes = 0

    def get_item(self, **_: Any) -> dict[str, Any]:
        self.reads += 1
        return {"Item": dict(self.item)} if self.item else {}

    def update_item(self, *, ExpressionAttributeValues: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        self.writes += 1
        values = ExpressionAttributeValues
        if ":expires" in values:
            if self.item and self.item["expires_ms"] > values[":now"]:
                raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "UpdateItem")
            self.item.update(holder=values[":token"], acquired_ms=values[":now"], expires_ms=values[":expires"])
        else:
            self.item["launches"] = values[":launches"]
        return {"Attributes": dict(self.item)}
