"""Deleting a person completely, and asking the workers for a gallery compaction.

In this order, each step safe to run again, so that a DELETE that failed half way is asked again
and finishes (a retry is never a 404 while anything of the person is left):

1. The person's row is marked ERASING. Workers check each candidate face against its person's
   row (read consistently) in the very batch that matches it, and read a marked row as no one's:
   from this write on nobody is named, enrolled or kept in a snapshot as the person.
2. Their enrollment jobs' records go, then those jobs' photos (input bucket) and results (output
   bucket): an upload that arrives later through a slot issued before finds no job, and the
   upload-event handler removes it (chalicelib.events).
3. Every recognition that named them is redacted (chalicelib.redaction): its result rewritten,
   its photo deleted, its record's identities taken out.
4. A compaction is queued: a worker folds the gallery without their faces
   (chalicelib.contract.JobKind.COMPACT).
5. The row goes, last: it holds the list of enrollment uploads a retry needs.
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
from .redaction import RecognitionRedactor, delete_stored

__all__ = ["Compactions", "PersonEraser"]


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
        self._recognitions = RecognitionRedactor(jobs, s3, settings)

    def erase(self, person_id: str) -> None:
        """Everything of the person, in the module's order; a 404 only when there is no person
        and no erasure of one left to finish."""
        record = self._people.begin_erasure(person_id)
        uploads = sorted(record.get(ENROLLMENT_UPLOADS, ()))
        job_ids = [parsed[0] for parsed in map(parse_upload_key, uploads) if parsed]
        self._jobs.delete(job_ids)
        delete_stored(self._s3, self._settings.input_bucket, uploads)
        delete_stored(self._s3, self._settings.output_bucket, [result_key(job_id) for job_id in job_ids])
        self._recognitions.redact(person_id)
        self._compactions.request()
        self._people.finish_erasure(person_id)
