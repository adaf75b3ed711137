"""The fleet plan: what the last scale-up round counted and asked for, and the workers' claims to
leave.

The scale-up task only adds workers; workers leave by themselves, as the seed chose (nothing
terminates a busy worker). Two kinds of leaving need the rest of the fleet's consent, because
every worker sees the same queue and would otherwise decide alike and all at once:

- retiring under load: a surplus worker leaves between batches while work goes on;
- stopping into the warm pool instead of terminating.

Both are claims on one item of the leases table, beside the scale-up lease, each a conditional
write that counts the claims already made: `retiring` (instance id -> when it claimed) holds at
most as many workers as the round's figures leave surplus, `warm_pool` (instance id -> when it
stopped) at most the pool size. The round publishes `live` and `desired` and forgets the retiring
workers it no longer counts live, so `live - len(retiring)` is the fleet that stays.

    scale-up round ──publish(live, desired, forget)──▶ item
                   ──take_from_pool(ids)──▶ StartInstances
           workers ──claim_retirement / claim_pool_slot──▶ item
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .aws import is_conditional_failure

__all__ = ["PLAN_KEY", "FleetPlan", "FleetPlanStore"]

# The plan's key in the leases table (key attribute `lease_name`): a worker's role may touch this
# item only (infra/template.yaml, dynamodb:LeadingKeys).
PLAN_KEY = "fleet-plan"


@dataclass(frozen=True)
class FleetPlan:
    """The item as read: `live` and `desired` as of `at_ms` (0: no round has published yet)."""

    live: int = 0
    desired: int = 0
    at_ms: int = 0
    # When the round last saw the fleet change (workers launched or started, retired workers gone,
    # workers vanished): a worker's busy figure over a window older than this mixes two fleets.
    changed_ms: int = 0
    retiring: Mapping[str, int] = field(default_factory=dict)
    pool: Mapping[str, int] = field(default_factory=dict)

    @property
    def staying(self) -> int:
        """Live workers that have not claimed to retire."""
        return max(0, self.live - len(self.retiring))

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> FleetPlan:
        if not item:
            return cls()
        return cls(
            live=int(item.get("live", 0)),
            desired=int(item.get("desired", 0)),
            at_ms=int(item.get("at_ms", 0)),
            changed_ms=int(item.get("changed_ms", 0)),
            retiring={key: int(value) for key, value in item.get("retiring", {}).items()},
            pool={key: int(value) for key, value in item.get("warm_pool", {}).items()},
        )


class FleetPlanStore:
    """The plan item's reads and conditional writes, on the leases table (a boto3 Table)."""

    def __init__(self, table: Any, key: str = PLAN_KEY) -> None:
        self._table = table
        self._key = {"lease_name": key}

    def read(self) -> FleetPlan:
        # Consistent: a claim is judged against the counts as they are, not a replica's.
        return FleetPlan.from_item(
            self._table.get_item(Key=self._key, ConsistentRead=True).get("Item")
        )

    def publish(
        self,
        *,
        live: int,
        desired: int,
        now_ms: int,
        forget: Iterable[str] = (),
        unpool: Iterable[str] = (),
        changed: bool = False,
    ) -> None:
        """The round's counts; `forget` leaves `retiring` (no longer live: their claim is spent),
        `unpool` leaves `pool` (gone from EC2, or no longer stopped); `changed` stamps `changed_ms`:
        the fleet is not what the plan said (launched or started workers, leavers gone)."""
        names: dict[str, str] = {}
        removes = []
        for index, instance_id in enumerate(forget):
            names[f"#f{index}"] = instance_id
            removes.append(f"retiring.#f{index}")
        for index, instance_id in enumerate(unpool):
            names[f"#u{index}"] = instance_id
            removes.append(f"warm_pool.#u{index}")
        extra: dict[str, Any] = {}
        stamp = ", changed_ms = :now" if changed else ""
        if removes:
            # Entries to remove were read from the maps, so they exist; DynamoDB refuses a SET of
            # a map and a REMOVE inside it in one expression.
            update = (
                f"SET live = :live, desired = :desired, at_ms = :now{stamp} REMOVE "
                + ", ".join(removes)
            )
            extra["ExpressionAttributeNames"] = names
            values: dict[str, Any] = {}
        else:
            # The maps must exist before claims can set entries in them path by path.
            update = (
                f"SET live = :live, desired = :desired, at_ms = :now{stamp}, "
                "retiring = if_not_exists(retiring, :empty), "
                "warm_pool = if_not_exists(warm_pool, :empty)"
            )
            values = {":empty": {}}
        self._table.update_item(
            Key=self._key,
            UpdateExpression=update,
            ExpressionAttributeValues={
                ":live": live,
                ":desired": desired,
                ":now": now_ms,
                **values,
            },
            **extra,
        )

    def claim_retirement(self, instance_id: str, now_ms: int, limit: int) -> bool:
        """Claim one of the fleet's retirements: True when fewer than `limit` workers had claimed
        (the caller's `len(plan.retiring)` plus the surplus it computed), so racing workers that
        read the same plan let exactly that surplus go."""
        return self._claim("retiring", instance_id, now_ms, limit)

    def claim_pool_slot(self, instance_id: str, now_ms: int, pool_size: int) -> bool:
        """Claim a place in the warm pool: True when it held fewer than `pool_size` instances."""
        return pool_size > 0 and self._claim("warm_pool", instance_id, now_ms, pool_size)

    def take_from_pool(self, instance_ids: Iterable[str]) -> bool:
        """Remove these instances from the pool before starting them; False (nothing removed) when
        any of them is no longer there, so a pooled instance is started by one round only."""
        ids = list(instance_ids)
        if not ids:
            return True
        names = {f"#p{index}": instance_id for index, instance_id in enumerate(ids)}
        try:
            self._table.update_item(
                Key=self._key,
                UpdateExpression="REMOVE " + ", ".join(f"warm_pool.{name}" for name in names),
                ConditionExpression=" AND ".join(
                    f"attribute_exists(warm_pool.{name})" for name in names
                ),
                ExpressionAttributeNames=names,
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    def _claim(self, field_name: str, instance_id: str, now_ms: int, limit: int) -> bool:
        self._create_maps()
        try:
            self._table.update_item(
                Key=self._key,
                UpdateExpression=f"SET {field_name}.#me = :now",
                # Fewer claims than the limit; a worker that already holds one keeps it (a retry).
                ConditionExpression=(
                    f"size({field_name}) < :limit OR attribute_exists({field_name}.#me)"
                ),
                ExpressionAttributeNames={"#me": instance_id},
                ExpressionAttributeValues={":now": now_ms, ":limit": limit},
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    def _create_maps(self) -> None:
        self._table.update_item(
            Key=self._key,
            UpdateExpression=(
                "SET retiring = if_not_exists(retiring, :empty), "
                "warm_pool = if_not_exists(warm_pool, :empty)"
            ),
            ExpressionAttributeValues={":empty": {}},
        )
