"""The scale-up task: backlog and live workers in, RunInstances for the difference out."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from botocore.exceptions import ClientError

from ..config import Settings
from ..contract import STAGE_TAG, WORKER_ROLE_TAG
from ..exceptions import ScalingError
from .lease import Lease
from .policy import desired_workers, workers_to_launch

__all__ = ["ScaleUp", "ScaleUpResult"]

logger = logging.getLogger(__name__)

_LIVE_STATES = ("pending", "running")
_NO_CAPACITY = frozenset({"InsufficientInstanceCapacity", "InstanceLimitExceeded", "VcpuLimitExceeded"})


@dataclass(frozen=True)
class ScaleUpResult:
    """What one run did; the workflow reads `covered` and `retry_in_seconds`.

    `covered` means some run that started after this job was enqueued has counted the backlog.
    A run that finds the lease held is not covered on its first attempt: the holder may have read
    the backlog before this job's message arrived. The workflow then waits for the lease to expire
    and asks again; by then any holder took the lease after this job was enqueued, so the second
    attempt is always covered and a job costs at most two invocations.
    """

    covered: bool
    retry_in_seconds: int
    reason: str
    backlog: int = 0
    live: int = 0
    desired: int = 0
    launched: int = 0

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)


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

        `event` is the workflow state; a `scale_up` field in it is this job's previous answer,
        which makes this the second attempt.
        """
        settings = self._settings
        interval = settings.scale_up_interval_seconds
        grant = self._lease.try_acquire(interval)
        if grant is None:
            return ScaleUpResult(
                covered="scale_up" in event, retry_in_seconds=interval, reason="lease held"
            )
        backlog = self._backlog()
        states = self._worker_states()
        # A recent launch EC2 does not list yet is live; one it lists is whatever EC2 says (a
        # worker that stopped itself when idle is gone, however recently it was launched).
        unlisted = grant.recent_instance_ids(self._lease.now_ms(), settings.launch_grace_seconds) - set(states)
        live = {instance for instance, state in states.items() if state in _LIVE_STATES} | unlisted
        desired = desired_workers(
            backlog, len(live), settings.target_backlog_per_worker, settings.max_workers
        )
        count = workers_to_launch(desired, len(live))
        launched = self._launch(count, client_token=grant.token) if count else []
        if launched:
            self._lease.record_launch(grant, launched, settings.launch_grace_seconds)
        logger.info(
            "scale-up: backlog %d, live %d, desired %d, launched %d",
            backlog, len(live), desired, len(launched),
        )
        return ScaleUpResult(
            covered=True,
            retry_in_seconds=interval,
            reason="launched" if launched else "enough workers",
            backlog=backlog,
            live=len(live),
            desired=desired,
            launched=len(launched),
        )

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

    def _worker_states(self) -> dict[str, str]:
        """Every worker of this stage EC2 lists, in any state, by instance id."""
        role_key, role_value = WORKER_ROLE_TAG
        filters = [
            {"Name": f"tag:{role_key}", "Values": [role_value]},
            {"Name": f"tag:{STAGE_TAG}", "Values": [self._settings.stage_prefix]},
        ]
        try:
            pages = self._ec2.get_paginator("describe_instances").paginate(Filters=filters)
            return {
                instance["InstanceId"]: instance["State"]["Name"]
                for page in pages
                for reservation in page["Reservations"]
                for instance in reservation["Instances"]
            }
        except ClientError as exc:
            raise ScalingError("could not list the workers", exc) from exc

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
            if exc.response.get("Error", {}).get("Code") in _NO_CAPACITY:
                logger.warning("scale-up: no capacity for %d workers: %s", count, exc)
                return []
            raise ScalingError(f"could not launch {count} workers", exc) from exc
        return [instance["InstanceId"] for instance in response["Instances"]]
