"""The admin view's numbers: how deep the jobs queue is, which workers live, how the last hour's jobs stand.

A person watches them refresh (the web page's Fleet tab) while the fleet scales out from zero and
back. Each answer costs three GetQueueAttributes, one DescribeInstances and one scan of the jobs
table: the table has no index by time, and a scan reads every record the TTL keeps (job_ttl_days
of jobs), filtered to the last hour only after reading. infra/README.md puts a number on it.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from .config import Settings
from .contract import Clock, JobStatus, scan_all, utc_now_iso
from .exceptions import JobStoreError, ServiceError
from .scaling import LIVE_STATES, worker_states

__all__ = ["RECENT_SECONDS", "FleetView"]

# "The last hour" of the view's job counts.
RECENT_SECONDS = 3600


class FleetView:
    def __init__(self, sqs: Any, ec2: Any, jobs_table: Any, settings: Settings, clock: Clock = time.time) -> None:
        self._sqs = sqs
        self._ec2 = ec2
        self._jobs = jobs_table
        self._settings = settings
        self._clock = clock

    def snapshot(self) -> dict[str, Any]:
        """The queue, the fleet and the last hour's jobs by status, as of `generated_at`."""
        settings = self._settings
        jobs = self._depth(settings.jobs_queue_url)
        states = worker_states(self._ec2, settings.stage_prefix)
        live = sorted(instance for instance, state in states.items() if state in LIVE_STATES)
        return {
            "generated_at": utc_now_iso(self._clock),
            "queue": {
                "visible": jobs["ApproximateNumberOfMessages"],
                "in_flight": jobs["ApproximateNumberOfMessagesNotVisible"],
                "dead_lettered": self._dead_lettered(settings.jobs_dead_letter_queue_url),
                "upload_events_dead_lettered": self._dead_lettered(settings.upload_events_dead_letter_queue_url),
            },
            "workers": {
                "live": len(live),
                "max": settings.max_workers,
                "instances": [{"id": instance, "state": states[instance]} for instance in live],
            },
            "jobs_last_hour": self._recent_jobs(),
        }

    def _depth(self, queue_url: str) -> dict[str, int]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        try:
            attributes = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
        except ClientError as exc:
            raise ServiceError(f"could not read the depth of {queue_url}", exc) from exc
        return {name: int(attributes[name]) for name in names}

    def _dead_lettered(self, queue_url: str) -> int:
        """Every message in a dead-letter queue, also those a redrive holds right now."""
        return sum(self._depth(queue_url).values())

    def _recent_jobs(self) -> dict[str, int]:
        """Jobs created in the last RECENT_SECONDS, counted by their status now; every status
        appears, so a page shows a zero rather than a gap."""
        since = utc_now_iso(lambda: self._clock() - RECENT_SECONDS)
        try:
            items = scan_all(
                self._jobs,
                # ISO-8601 in one form (contract.utc_now_iso) sorts as time does.
                FilterExpression="created_at >= :since",
                ProjectionExpression="#status",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":since": since},
            )
        except ClientError as exc:
            raise JobStoreError("could not count the last hour's jobs", exc) from exc
        counts = {status.value: 0 for status in JobStatus}
        for item in items:
            counts[item["status"]] = counts.get(item["status"], 0) + 1
        return counts
