"""A time lease in DynamoDB: whoever holds it may call EC2, one round at a time, one round per
interval.

At 1000 uploads/s the scale-up task runs 1000 times a second, while EC2 allows RunInstances a
burst of 5 and 2 a second. One conditional write lets one run per interval through; the others
return at once without touching EC2. A holder takes the lease for as long as a round may take
(the hold) and, when its round is over, gives back what is left beyond its interval: rounds never
overlap unless one outlives its hold (its run died), however slow SQS and EC2 answer. A lease
that expired after one interval whatever the round was doing let the next run take it over in the
middle of every slow round, and under load no round kept it long enough to launch anything.

The lease item also keeps the fleet ledger: every worker its holders launched, until EC2 says it
is gone. DescribeInstances may not list an instance for a few seconds after RunInstances, and a
listing by tags misses every worker when a tag or the stage prefix is wrong; counting the ledger
too is what keeps the fleet under its cap then. Each holder's launch is one entry of the `fleet`
map, keyed by its token and written path by path, so two holders whose runs overlap (one slower
than its lease) never overwrite each other's entries.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ..contract import THROTTLED, error_code, is_conditional_failure
from ..exceptions import LeaseError

__all__ = ["FleetEntry", "Lease", "LeaseGrant"]


@dataclass(frozen=True)
class FleetEntry:
    """One holder's launch: `count` workers reserved at `at_ms`, their ids once RunInstances
    returned.

    An entry without ids is a reservation: its launch is in flight, or its run died before it
    could record the ids.
    """

    at_ms: int
    count: int
    ids: frozenset[str] = frozenset()

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> FleetEntry:
        ids = frozenset(item.get("ids", []))
        return cls(at_ms=int(item["at_ms"]), count=int(item.get("count", len(ids))), ids=ids)

    def to_item(self) -> dict[str, Any]:
        return {"at_ms": self.at_ms, "count": self.count, "ids": sorted(self.ids)}


@dataclass(frozen=True)
class LeaseGrant:
    """Proof of holding the lease: its token doubles as the RunInstances ClientToken and keys its
    own entry in the ledger.

    `fleet` is the ledger as the acquiring write left it, so it holds every reservation made by
    earlier holders. `legacy` holds the entries of the `launches` list that stacks deployed before
    the ledger kept; the ledger's next write moves them into `fleet`.
    """

    token: str
    acquired_ms: int
    fleet: Mapping[str, FleetEntry]
    legacy: Mapping[str, FleetEntry]

    @property
    def ledger(self) -> dict[str, FleetEntry]:
        return {**self.legacy, **self.fleet}


class Lease:
    """One named lease item in the leases table (key `lease_name`)."""

    def __init__(self, table: Any, name: str, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._name = name
        self._clock = clock

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def try_acquire(self, seconds: int) -> LeaseGrant | None:
        """The grant, held for `seconds`, when the lease was free (expired); None when another run
        holds it.

        A read comes first: at 1000 uploads/s the task runs up to 2000 times a second, and one
        DynamoDB item takes about 1000 writes a second, failed conditional writes included, while
        reads of it go three times as far. So only runs that find the lease expired try to write,
        and a throttled lease counts as held: other runs are busy with it.
        """
        now = self.now_ms()
        try:
            # Consistent: a second attempt must not read a lease that has already expired as held.
            current = self._table.get_item(Key={"lease_name": self._name}, ConsistentRead=True).get(
                "Item"
            )
        except ClientError as exc:
            if error_code(exc) in THROTTLED:
                return None
            raise LeaseError(f"could not read the {self._name} lease", exc) from exc
        if current is not None and int(current.get("expires_ms", 0)) > now:
            return None
        token = secrets.token_hex(16)
        try:
            response = self._table.update_item(
                Key={"lease_name": self._name},
                # The ledger map must exist before entries can be set in it path by path.
                UpdateExpression=(
                    "SET holder = :token, acquired_ms = :now, expires_ms = :expires, "
                    "fleet = if_not_exists(fleet, :empty)"
                ),
                # Free when it never existed or has expired; an unexpired lease is never taken
                # over, which is what bounds EC2 calls to one round per interval.
                ConditionExpression="attribute_not_exists(lease_name) OR expires_ms <= :now",
                ExpressionAttributeValues={
                    ":token": token,
                    ":now": now,
                    ":expires": now + seconds * 1000,
                    ":empty": {},
                },
                # The ledger after this write: every reservation that earlier holders made while
                # they held the lease is in it, and none can be made after it.
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if is_conditional_failure(exc) or error_code(exc) in THROTTLED:
                return None
            raise LeaseError(f"could not take the {self._name} lease", exc) from exc
        item = response["Attributes"]
        return LeaseGrant(
            token=token,
            acquired_ms=now,
            fleet={key: FleetEntry.from_item(entry) for key, entry in item["fleet"].items()},
            legacy={
                f"launches-{index}": FleetEntry.from_item(launch)
                for index, launch in enumerate(item.get("launches", []))
            },
        )

    def release(self, grant: LeaseGrant, interval_seconds: int) -> None:
        """End the holder's round: the lease is free again one interval after it was taken (at
        once, when the round took longer). Nothing when a later run has taken it over."""
        try:
            self._table.update_item(
                Key={"lease_name": self._name},
                UpdateExpression="SET expires_ms = :end",
                ConditionExpression="holder = :token",
                ExpressionAttributeValues={
                    ":end": grant.acquired_ms + interval_seconds * 1000,
                    ":token": grant.token,
                },
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise LeaseError(f"could not release the {self._name} lease", exc) from exc

    def reserve(self, grant: LeaseGrant, ledger: Mapping[str, FleetEntry], count: int) -> bool:
        """Write the ledger's changes and a reservation for `count` workers under this holder's
        token, while it still holds the lease; False when a later run has taken the lease over.

        The reservation comes before RunInstances: a later holder then counts the launch even
        while it is in flight, and a run whose lease was taken over launches nothing, because the
        new holder counted the fleet without it.
        """
        changes = _LedgerChanges.between(grant, ledger)
        changes.sets[grant.token] = FleetEntry(at_ms=self.now_ms(), count=count)
        try:
            self._write(changes, holder=grant.token)
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise LeaseError(f"could not reserve a launch on the {self._name} lease", exc) from exc
        return True

    def record_launch(self, grant: LeaseGrant, instance_ids: list[str]) -> None:
        """Fill this holder's reservation with the ids RunInstances returned; none drops it."""
        entry = FleetEntry(
            at_ms=self.now_ms(), count=len(instance_ids), ids=frozenset(instance_ids)
        )
        changes = (
            _LedgerChanges(sets={grant.token: entry})
            if instance_ids
            else _LedgerChanges(removes=[grant.token])
        )
        try:
            self._write(changes)
        except ClientError as exc:
            raise LeaseError(
                f"could not record launched workers {instance_ids} on the {self._name} lease", exc
            ) from exc

    def update_ledger(self, grant: LeaseGrant, ledger: Mapping[str, FleetEntry]) -> None:
        """Write the entries that differ from what the grant read; nothing when none do."""
        changes = _LedgerChanges.between(grant, ledger)
        if not changes:
            return
        try:
            self._write(changes)
        except ClientError as exc:
            raise LeaseError(f"could not update the ledger on the {self._name} lease", exc) from exc

    def _write(self, changes: _LedgerChanges, holder: str | None = None) -> None:
        """Entry by entry: a holder sets and removes only the entries it names, so entries that
        another holder writes meanwhile survive. With `holder`, only while that token holds the
        lease."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets, removes = [], []
        for index, (key, entry) in enumerate(changes.sets.items()):
            names[f"#s{index}"], values[f":s{index}"] = key, entry.to_item()
            sets.append(f"fleet.#s{index} = :s{index}")
        for index, key in enumerate(changes.removes):
            names[f"#r{index}"] = key
            removes.append(f"fleet.#r{index}")
        if changes.retire_legacy:
            removes.append("launches")
        clauses = ([f"SET {', '.join(sets)}"] if sets else []) + (
            [f"REMOVE {', '.join(removes)}"] if removes else []
        )
        extra: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
        if holder is not None:
            # Still the holder: no later run has read the ledger without this write.
            extra["ConditionExpression"] = "holder = :holder"
            values[":holder"] = holder
        if values:
            extra["ExpressionAttributeValues"] = values
        self._table.update_item(
            Key={"lease_name": self._name}, UpdateExpression=" ".join(clauses), **extra
        )


@dataclass
class _LedgerChanges:
    """Entries to set and keys to remove in the `fleet` map, and whether to drop the old list."""

    sets: dict[str, FleetEntry] = field(default_factory=dict)
    removes: list[str] = field(default_factory=list)
    retire_legacy: bool = False

    @classmethod
    def between(cls, grant: LeaseGrant, ledger: Mapping[str, FleetEntry]) -> _LedgerChanges:
        """What turns the ledger the grant read into `ledger`; the first write retires the old list,
        whose entries still in `ledger` move into the map."""
        return cls(
            sets={key: entry for key, entry in ledger.items() if grant.fleet.get(key) != entry},
            removes=[key for key in grant.fleet if key not in ledger],
            retire_legacy=bool(grant.legacy),
        )

    def __bool__(self) -> bool:
        return bool(self.sets or self.removes or self.retire_legacy)
