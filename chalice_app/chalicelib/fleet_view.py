"""The admin view's numbers: how deep the jobs queue is, which workers live, how the last hour's
jobs stand.

A person watches them refresh (the web page's Fleet tab) while the fleet scales out from zero and
back. Each answer costs three GetQueueAttributes and one DescribeInstances, and the job counts a
scan of the jobs table: the table has no index by time, so a scan reads every record the TTL keeps
(job_ttl_days of jobs) and filters to the last hour only after reading. The counts are therefore
kept for settings.fleet_view_scan_seconds and serve every refresh in between; infra/README.md puts
a number on the cost.
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
    def __init__(
        self, sqs: Any, ec2: Any, jobs_table: Any, settings: Settings, clock: Clock = time.time
    ) -> None:
        self._sqs = sqs
        self._ec2 = ec2
        self._jobs = jobs_table
        self._settings = settings
        self._clock = clock
        # (when counted, the counts); a race between two requests only scans twice.
        self._recent: tuple[float, dict[str, int]] | None = None

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
                "upload_events_dead_lettered": self._dead_lettered(
                    settings.upload_events_dead_letter_queue_url
                ),
            },
            "workers": {
                "live": len(live),
                "max": settings.max_workers,
                "instances": [{"id": instance, "state": states[instance]} for instance in live],
            },
            **self._recent_jobs(),
        }

    def _depth(self, queue_url: str) -> dict[str, int]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        try:
            attributes = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)[
                "Attributes"
            ]
        except ClientError as exc:
            raise ServiceError(f"could not read the depth of {queue_url}", exc) from exc
        return {name: int(attributes[name]) for name in names}

    def _dead_lettered(self, queue_url: str) -> int:
        """Every message in a dead-letter queue, also those a redrive holds right now."""
        return sum(self._depth(queue_url).values())

    def _recent_jobs(self) -> dict[str, Any]:
        """The last hour's counts and when they were made: a new scan once the last is stale."""
        now = self._clock()
        if self._recent is None or now - self._recent[0] >= self._settings.fleet_view_scan_seconds:
            self._recent = (now, self._count_recent_jobs())
        counted_at, counts = self._recent
        return {"jobs_last_hour": counts, "jobs_counted_at": utc_now_iso(lambda: counted_at)}

    def _count_recent_jobs(self) -> dict[str, int]:
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
