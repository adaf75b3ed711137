"""The leases table on moto's DynamoDB engine: the scale-up lease and the fleet plan, judged as
DynamoDB judges conditional writes, at simulated time (the callers pass their own clock).

The table lives in a DynamoDB backend of the simulation's own, called directly: the real `Lease`
and `FleetPlanStore` hand it the same keys, expressions and values as they hand AWS, and moto's
engine parses and evaluates them. Only the wire is skipped (boto3's typed JSON in and out, which
`TypeSerializer`/`TypeDeserializer` do here): through moto's request dispatch a round cost about
20 ms of serialising, and the 1000 uploads/s trace took minutes instead of seconds. A backend of
its own also leaves alone any moto server running in the same process (the test suite's).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from moto.dynamodb.exceptions import DynamodbException
from moto.dynamodb.models import DynamoDBBackend

__all__ = ["BackendTable", "SimTables"]

_REGION, _ACCOUNT = "us-east-1", "123456789012"
_SERIALIZE, _DESERIALIZE = TypeSerializer().serialize, TypeDeserializer().deserialize


class BackendTable:
    """The calls of boto3's Table that `Lease` and `FleetPlanStore` make, on a moto backend."""

    def __init__(self, backend: DynamoDBBackend, name: str) -> None:
        self._backend = backend
        self.name = name
        self.calls: Counter[str] = Counter()

    def get_item(self, *, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.calls["GetItem"] += 1
        item = self._backend.get_item(self.name, _typed(Key))
        return {"Item": _plain(item.to_json()["Attributes"])} if item is not None else {}

    def update_item(
        self,
        *,
        Key: dict[str, Any],
        UpdateExpression: str,
        ConditionExpression: str | None = None,
        ExpressionAttributeNames: dict[str, str] | None = None,
        ExpressionAttributeValues: dict[str, Any] | None = None,
        ReturnValues: str = "NONE",
    ) -> dict[str, Any]:
        self.calls["UpdateItem"] += 1
        try:
            item = self._backend.update_item(
                self.name,
                _typed(Key),
                UpdateExpression,
                ExpressionAttributeNames or {},
                _typed(ExpressionAttributeValues or {}),
                condition_expression=ConditionExpression,
            )
        except DynamodbException as exc:
            # moto's error type names DynamoDB's error code, as its server would answer.
            raise ClientError(
                {"Error": {"Code": exc.error_type.split("#")[-1], "Message": exc.message}},
                "UpdateItem",
            ) from exc
        return (
            {"Attributes": _plain(item.to_json()["Attributes"])}
            if ReturnValues == "ALL_NEW"
            else {}
        )


class SimTables:
    """The leases table of one simulation."""

    def __init__(self) -> None:
        backend = DynamoDBBackend(_REGION, _ACCOUNT)
        backend.create_table(
            "sim-leases",
            schema=[{"AttributeName": "lease_name", "KeyType": "HASH"}],
            throughput=None,
            attr=[{"AttributeName": "lease_name", "AttributeType": "S"}],
            global_indexes=None,
            indexes=None,
            streams=None,
            billing_mode="PAY_PER_REQUEST",
            sse_specification=None,
            tags=[],
            deletion_protection_enabled=False,
            warm_throughput=None,
        )
        self.leases = BackendTable(backend, "sim-leases")

    @property
    def calls(self) -> Counter[str]:
        return self.leases.calls


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _SERIALIZE(value) for key, value in values.items()}


def _plain(attributes: dict[str, Any]) -> dict[str, Any]:
    return {key: _DESERIALIZE(value) for key, value in attributes.items()}
