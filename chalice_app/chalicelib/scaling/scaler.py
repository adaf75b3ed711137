"""The scale-up task: backlog and live workers in, RunInstances for the difference out."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

from botocore.exceptions import ClientError

from ..config import Settings
from ..contract import STAGE_TAG, WORKER_ROLE_TAG, error_code
from ..exceptions import ScalingError
from .fleet import LIVE_STATES, describe_states, worker_states
from .lease import FleetEntry, Lease, LeaseGrant
from .policy import desired_workers, workers_to_launch

__all__ = ["PREVIOUS_ANSWER", "ScaleUp", "ScaleUpResult"]

logger = logging.getLogger(__name__)

_NO_CAPACITY = frozenset({"InsufficientInstanceCapacity", "InstanceLimitExceeded", "VcpuLimitExceeded"})
# Where the workflow keeps this task's answer in its state (the "Launch workers if needed" state's
# ResultPath, held to this name by tests/test_workflow_definition.py): a state that has one is
# this job's second attempt.
PREVIOUS_ANSWER = "scale_up"
_LEASE_HELD = "lease held"


@dataclass(frozen=True)
class ScaleUpResult:
    """What one run did; the workflow reads `covered` and `retry_in_seconds`.

    `covered` means some run that started after this job was enqueued has counted the backlog.
    A run that finds the lease held is not covered on its first attempt: the holder may have read
    the backlog before this job's message arrived. The workflow then waits for the lease to expire
    and asks again; by then any holder took the lease after this job was enqueued, so the second
    attempt is always covered and a job costs at most two invocations. A holder whose lease was
    taken over before it launched ("lease lost") is covered too: the run that took it over counts
    the backlog after it did.
    """

    covered: bool
    retry_in_seconds: int
    reason: str
    backlog: int = 0
    live: int = 0
    desired: int = 0
    launched: int = 0

    @property
    def counted(self) -> bool:
        """Whether this run held the lease and so counted the backlog and the fleet."""
        return self.reason != _LEASE_HELD

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Fleet:
    """The live workers counted, and the ledger as it should be written back."""

    live: int
    ledger: dict[str, FleetEntry]


class ScaleUp:
    """Reads the backlog and the live workers, launches the difference the policy asks for.

    Runs once per job; the lease lets one run per interval through to SQS and EC2.
    """

    def __init__(self, sqs_client: Any, ec2_client: Any, lease: Lease, settings: Settings) -> None:
        self._sqs = sqs_client
        self._ec2 = ec2_client
        self._lease = lease
        self._settings = settings

    def run(self, event: Mapping[str, Any]) -> ScaleUpResult:
        """One scale-up round, or none when another run holds the lease.

        `event` is the workflow state; its PREVIOUS_ANSWER field, once the workflow has asked
        before, makes this the second attempt.
        """
        settings = self._settings
        interval = settings.scale_up_interval_seconds
        grant = self._lease.try_acquire(settings.scale_up_hold_seconds)
        if grant is None:
            return ScaleUpResult(
                covered=PREVIOUS_ANSWER in event, retry_in_seconds=interval, reason=_LEASE_HELD
            )
        try:
            return self._round(grant)
        finally:
            self._lease.release(grant, interval)

    def _round(self, grant: LeaseGrant) -> ScaleUpResult:
        settings = self._settings
        interval = settings.scale_up_interval_seconds
        backlog = self._backlog()
        fleet = self._count_fleet(grant)
        desired = desired_workers(
            backlog, fleet.live, settings.target_backlog_per_worker, settings.max_workers
        )
        count = workers_to_launch(desired, fleet.live)
        launched: list[str] = []
        if not count:
            self._lease.update_ledger(grant, fleet.ledger)
        elif self._lease.reserve(grant, fleet.ledger, count):
            launched = self._launch(count, client_token=grant.token)
            self._lease.record_launch(grant, launched)
        else:
            logger.info("scale-up: lease taken over before launching %d workers; launched none", count)
            return ScaleUpResult(
                covered=True,
                retry_in_seconds=interval,
                reason="lease lost",
                backlog=backlog,
                live=fleet.live,
                desired=desired,
            )
        logger.info(
            "scale-up: backlog %d, live %d, desired %d, launched %d",
            backlog, fleet.live, desired, len(launched),
        )
        return ScaleUpResult(
            covered=True,
            retry_in_seconds=interval,
            reason="launched" if launched else "enough workers",
            backlog=backlog,
            live=fleet.live,
            desired=desired,
            launched=len(launched),
        )

    def _count_fleet(self, grant: LeaseGrant) -> _Fleet:
        """The live workers, and the ledger with the workers that are gone left out.

        Live are the workers the tag listing shows live, and the ledger's workers it does not show:
        within the grace period because DescribeInstances lags RunInstances; past it only when EC2,
        asked by id, says they are live: then the tag listing misses the fleet, and without the
        ledger every round would launch again, past the cap. A worker EC2 lists in any other state
        (terminated, stopped), or knows nothing of past the grace, leaves the ledger. So does a
        reservation without ids past the grace: its run died before recording what it launched.
        """
        listed = worker_states(self._ec2, self._settings.stage_prefix)
        now, grace_ms = self._lease.now_ms(), self._settings.launch_grace_seconds * 1000
        ledger = grant.ledger

        def recent(entry: FleetEntry) -> bool:
            return now - entry.at_ms < grace_ms

        unlisted = sorted({i for entry in ledger.values() if not recent(entry) for i in entry.ids} - listed.keys())
        # Only asked when the tag listing misses a worker: a healthy round makes one call.
        by_id = self._states_by_id(unlisted) if unlisted else {}
        missed = sorted(i for i, state in by_id.items() if state in LIVE_STATES)
        if missed:
            role_key, role_value = WORKER_ROLE_TAG
            logger.error(
                "scale-up: live workers %s are not listed under the tags %s=%s, %s=%s; they count "
                "against the cap of %d, but check FACEREC_STAGE_PREFIX and the launch template's tags",
                missed, role_key, role_value, STAGE_TAG, self._settings.stage_prefix, self._settings.max_workers,
            )
        states = {**by_id, **listed}
        kept: dict[str, FleetEntry] = {}
        for key, entry in ledger.items():
            ids = frozenset(
                i for i in entry.ids
                if states.get(i) in LIVE_STATES or (i not in states and recent(entry))
            )
            if ids or (not entry.ids and recent(entry)):
                kept[key] = replace(entry, ids=ids)
        live = {i for i, state in listed.items() if state in LIVE_STATES}.union(
            *(entry.ids for entry in kept.values())
        )
        reserved = sum(entry.count for entry in kept.values() if not entry.ids)
        return _Fleet(live=len(live) + reserved, ledger=kept)

    def _backlog(self) -> int:
        """Messages waiting plus messages in flight: both need a worker until they are deleted."""
        try:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self._settings.jobs_queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        except ClientError as exc:
            raise ScalingError("could not read the jobs queue's backlog", exc) from exc
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def _states_by_id(self, instance_ids: list[str]) -> dict[str, str]:
        """EC2's state of each of these instances it knows, whatever their tags.

        A filter rather than InstanceIds: EC2 refuses the whole call when one id is unknown, and
        an instance terminated long ago is unknown.
        """
        return describe_states(self._ec2, [{"Name": "instance-id", "Values": instance_ids}], "could not look up workers by id")

    def _launch(self, count: int, client_token: str) -> list[str]:
        """Launch `count` workers in one call; none when EC2 has no capacity for them now.

        MinCount equals MaxCount: moto launches MinCount instances, so anything else would test a
        different fleet than AWS launches. A capacity refusal is not the job's failure: the job
        stays queued and the next round, a second later, asks again.
        """
        try:
            response = self._ec2.run_instances(
                LaunchTemplate={
                    "LaunchTemplateName": self._settings.worker_launch_template,
                    "Version": "$Default",
                },
                MinCount=count,
                MaxCount=count,
                # Idempotent on AWS when botocore retries this call; moto ignores it, and the
                # lease is what keeps concurrent runs from launching twice.
                ClientToken=client_token,
            )
        except ClientError as exc:
            if error_code(exc) in _NO_CAPACITY:
                logger.warning("scale-up: no capacity for %d workers: %s", count, exc)
                return []
            raise ScalingError(f"could not launch {count} workers", exc) from exc
        return [instance["InstanceId"] for instance in response["Instances"]]
