"""A time lease in DynamoDB: whoever holds it may call EC2; nobody releases it early.

At 1000 uploads/s the scale-up task runs 1000 times a second, while EC2 allows RunInstances a
burst of 5 and 2 a second. One conditional write lets one run per interval through; the others
return at once without touching EC2. The lease also remembers what its holders launched, because
DescribeInstances may not list an instance for a few seconds after RunInstances.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable

from botocore.exceptions import ClientError

from ..exceptions import JobStoreError

__all__ = ["Lease", "LeaseGrant"]


@dataclass(frozen=True)
class LeaseGrant:
    """Proof of holding the lease: its token doubles as the RunInstances ClientToken."""

    token: str
    acquired_ms: int
    launches: tuple[dict[str, Any], ...]

    def recent_instance_ids(self, now_ms: int, grace_seconds: int) -> frozenset[str]:
        """Instances launched within the grace period, whether or not EC2 lists them yet."""
        return frozenset(
            instance_id
            for launch in self.launches
            if now_ms - int(launch["at_ms"]) < grace_seconds * 1000
            for instance_id in launch["ids"]
        )


class Lease:
    def __init__(self, table: Any, name: str, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._name = name
        self._clock = clock

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def try_acquire(self, seconds: int) -> LeaseGrant | None:
        """The grant when the lease was free (expired), None when another run holds it."""
        now = self.now_ms()
        token = secrets.token_hex(16)
        try:
            response = self._table.update_item(
                Key={"lease_name": self._name},
                UpdateExpression="SET holder = :token, acquired_ms = :now, expires_ms = :expires",
                # Free when it never existed or has expired; an unexpired lease is never taken
                # over, which is what bounds EC2 calls to one round per interval.
                ConditionExpression="attribute_not_exists(lease_name) OR expires_ms <= :now",
                ExpressionAttributeValues={
                    ":token": token,
                    ":now": now,
                    ":expires": now + seconds * 1000,
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise JobStoreError(f"could not take the {self._name} lease", exc) from exc
        launches = tuple(response["Attributes"].get("launches", []))
        return LeaseGrant(token=token, acquired_ms=now, launches=launches)

    def record_launch(self, grant: LeaseGrant, instance_ids: list[str], grace_seconds: int) -> None:
        """Remember these instances for the next holders; entries past the grace period are dropped."""
        now = self.now_ms()
        kept = [
            launch
            for launch in grant.launches
            if now - int(launch["at_ms"]) < grace_seconds * 1000
        ]
        try:
            self._table.update_item(
                Key={"lease_name": self._name},
                UpdateExpression="SET launches = :launches",
                ExpressionAttributeValues={
                    ":launches": [*kept, {"at_ms": now, "ids": list(instance_ids)}]
                },
            )
        except ClientError as exc:
            raise JobStoreError(f"could not record launches on the {self._name} lease", exc) from exc
