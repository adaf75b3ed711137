"""Asking the workers for a gallery compaction: after a deletion, and on the schedule when
enrollments wait to be folded into a snapshot."""

from __future__ import annotations

import time
from typing import Any

from .config import Settings
from .contract import (
    GALLERY_PREFIX,
    MANIFEST_PENDING,
    JobKind,
    JobMessage,
    manifest_of_change,
    read_manifest,
)
from .jobs import JobStore, new_job_id

__all__ = ["Compactions"]


class Compactions:
    """Compaction jobs: recorded QUEUED and sent to the jobs queue as the workflow would, with no
    photo; the scale-up schedule brings a worker up for them like for any queued job."""

    def __init__(self, jobs: JobStore, sqs: Any, s3: Any, settings: Settings) -> None:
        self._jobs = jobs
        self._sqs = sqs
        self._s3 = s3
        self._settings = settings

    def request(self) -> str:
        job_id = new_job_id()
        self._jobs.create_queued(
            job_id, JobKind.COMPACT, int(time.time()) + self._settings.job_ttl_seconds
        )
        message = JobMessage(
            job_id=job_id,
            kind=JobKind.COMPACT,
            bucket=self._settings.output_bucket,
            key=GALLERY_PREFIX,
        )
        self._sqs.send_message(
            QueueUrl=self._settings.jobs_queue_url, MessageBody=message.to_json()
        )
        return job_id

    def request_if_changes_wait(self) -> str | None:
        """A compaction when any gallery has enrollments not yet in its snapshot that its last
        compaction did not leave pending (one LIST per 1,000 objects, and a GET of each manifest
        with changes).

        A pending change is one whose job had not finished; should that job never finish (its
        last delivery's worker died), counting its change as waiting would bring a worker up
        every `compaction_minutes` for a stage that is otherwise idle. It is folded by the first
        compaction that a new enrollment or a deletion asks for once its job is over.
        """
        bucket = self._settings.output_bucket
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=GALLERY_PREFIX
        )
        changes: dict[str, set[str]] = {}
        for key in (item["Key"] for page in pages for item in page.get("Contents", [])):
            manifest = manifest_of_change(key)
            if manifest:
                changes.setdefault(manifest, set()).add(key)
        waiting = any(
            keys - set(read_manifest(self._s3, bucket, manifest)[MANIFEST_PENDING])
            for manifest, keys in changes.items()
        )
        return self.request() if waiting else None
