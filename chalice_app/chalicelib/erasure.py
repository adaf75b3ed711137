"""Deleting a person completely.

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

from typing import Any

from .compactions import Compactions
from .config import Settings
from .contract import parse_upload_key, result_key
from .jobs import JobStore
from .people import ENROLLMENT_UPLOADS, PeopleStore
from .redaction import RecognitionRedactor, delete_stored

__all__ = ["PersonEraser"]


class PersonEraser:
    def __init__(
        self,
        people: PeopleStore,
        jobs: JobStore,
        compactions: Compactions,
        s3: Any,
        settings: Settings,
    ) -> None:
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
        delete_stored(
            self._s3, self._settings.output_bucket, [result_key(job_id) for job_id in job_ids]
        )
        self._recognitions.redact(person_id)
        self._compactions.request()
        self._people.finish_erasure(person_id)
