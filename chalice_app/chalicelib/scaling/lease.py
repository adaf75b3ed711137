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

_THROTTLED = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


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
    """One named lease item in the leases table (key `lease_name`)."""

    def __init__(self, table: Any, name: str, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._name = name
        self._clock = clock

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def try_acquire(self, seconds: int) -> LeaseGrant | None:
        """The grant when the lease was free (expired), None when another run holds it.

        A read comes first: at 1000 uploads/s the task runs up to 2000 times a second, and one
        DynamoDB item takes about 1000 writes a second, failed conditional writes included, while
        reads of it go three times as far. So only runs that find the lease expired try to write,
        and a throttled lease counts as held: other runs are busy with it.
        """
        now = self.now_ms()
        try:
            # Consistent: a second attempt must not read a lease that has already expired as held.
            current = self._table.get_item(Key={"lease_name": self._name}, ConsistentRead=True).get("Item")
        except ClientError as exc:
            if _error_code(exc) in _THROTTLED:
                return None
            raise JobStoreError(f"could not read the {self._name} lease", exc) from exc
        if current is not None and int(current.get("expires_ms", 0)) > now:
            return None
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
            if _error_code(exc) == "ConditionalCheckFailedException" or _error_code(exc) in _THROTTLED:
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
