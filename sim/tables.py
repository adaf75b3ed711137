"""The leases table in moto's in-process DynamoDB: the scale-up lease and the fleet plan, judged as
DynamoDB judges conditional writes, at simulated time (the callers pass their own clock).

moto's patch is started without a reset and stopped without removing data, so a simulation in a
process that also runs a moto server (the test suite) leaves that server's resources alone; each
simulation's table has a name of its own and is deleted at the end.
"""

from __future__ import annotations

import uuid
from typing import Any

import boto3
from moto import mock_aws

__all__ = ["SimTables"]

_REGION = "us-east-1"


class SimTables:
    def __init__(self) -> None:
        self._mock = mock_aws()
        self._mock.start(reset=False)
        session = boto3.session.Session(aws_access_key_id="sim", aws_secret_access_key="sim", region_name=_REGION)
        self._dynamodb = session.resource("dynamodb")
        self.leases: Any = self._dynamodb.create_table(
            TableName=f"sim-leases-{uuid.uuid4().hex[:12]}",
            KeySchema=[{"AttributeName": "lease_name", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "lease_name", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.calls: dict[str, int] = {"GetItem": 0, "UpdateItem": 0}
        self.leases.meta.client.meta.events.register("before-call.dynamodb.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1

    def close(self) -> None:
        """Safe to call twice."""
        if self._mock is not None:
            self.leases.delete()
            self._mock.stop(remove_data=False)
            self._mock = None
