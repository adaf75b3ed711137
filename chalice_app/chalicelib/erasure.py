"""Deleting a person completely, and asking the workers for a gallery compaction.

The people record goes first: workers check each candidate face against its person's record
(read consistently) in the very batch that matches it, so once DELETE answers nobody is named as
that person again. Then the enrollment photos (input bucket), their jobs' result documents
(output bucket) and job records go; the faces themselves leave S3 in the compaction that the
deletion queues at once (a worker folds the gallery without them, chalicelib.contract.JobKind.COMPACT).
"""

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
    parse_upload_key,
    read_manifest,
    result_key,
)
from .jobs import JobStore, new_job_id
from .people import ENROLLMENT_UPLOADS, PeopleStore

__all__ = ["Compactions", "PersonEraser"]

# S3's DeleteObjects takes at most this many keys a call.
_DELETE_BATCH = 1000


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
        self._jobs.create_queued(job_id, JobKind.COMPACT, int(time.time()) + self._settings.job_ttl_seconds)
        message = JobMessage(job_id=job_id, kind=JobKind.COMPACT, bucket=self._settings.output_bucket, key=GALLERY_PREFIX)
        self._sqs.send_message(QueueUrl=self._settings.jobs_queue_url, MessageBody=message.to_json())
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
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=GALLERY_PREFIX)
        changes: dict[str, set[str]] = {}
        for key in (item["Key"] for page in pages for item in page.get("Contents", [])):
            manifest = manifest_of_change(key)
            if manifest:
                changes.setdefault(manifest, set()).add(key)
        waiting = any(
            keys - set(read_manifest(self._s3, bucket, manifest)[MANIFEST_PENDING]) for manifest, keys in changes.items()
        )
        return self.request() if waiting else None


class PersonEraser:
    def __init__(self, people: PeopleStore, jobs: JobStore, compactions: Compactions, s3: Any, settings: Settings) -> None:
        self._people = people
        self._jobs = jobs
        self._compactions = compactions
        self._s3 = s3
        self._settings = settings

    def erase(self, person_id: str) -> None:
        """The record, the photos, the results, the job records, and a compaction for the faces."""
        record = self._people.delete(person_id)
        uploads = sorted(record.get(ENROLLMENT_UPLOADS, ()))
        job_ids = [parsed[0] for parsed in map(parse_upload_key, uploads) if parsed]
        self._delete(self._settings.input_bucket, uploads)
        self._delete(self._settings.output_bucket, [result_key(job_id) for job_id in job_ids])
        self._jobs.delete(job_ids)
        self._compactions.request()

    def _delete(self, bucket: str, keys: list[str]) -> None:
        for start in range(0, len(keys), _DELETE_BATCH):
            objects = [{"Key": key} for key in keys[start : start + _DELETE_BATCH]]
            self._s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
