"""Enrollment uploads: one job and presigned upload per photo, one request for many photos, and
each photo's upload key noted on the person's record so that deleting the person finds it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .api import JobsApi
from .config import Settings
from .contract import JobKind, upload_key
from .exceptions import NotFoundError
from .people import PeopleStore
from .uploads import UploadRequest, photo_requests

__all__ = ["Enrollments"]


class Enrollments:
    def __init__(self, people: PeopleStore, jobs_api: JobsApi, settings: Settings) -> None:
        self._people = people
        self._jobs_api = jobs_api
        self._settings = settings

    def create(self, person_id: str, body: Any) -> dict[str, Any]:
        """`{"filename", "content_type"}` answers one job as before; `{"photos": [...]}` answers
        `{"jobs": [...]}`, one job per photo, in order."""
        bulk = isinstance(body, Mapping) and "photos" in body
        requests = (
            photo_requests(body, self._settings)
            if bulk
            else [UploadRequest.from_body(body, self._settings)]
        )
        if self._people.get(person_id) is None:
            raise NotFoundError(f"no person {person_id!r}: create them first (POST /people)")
        jobs = [
            self._jobs_api.create(request, JobKind.ENROLL, person=person_id) for request in requests
        ]
        self._people.record_uploads(
            person_id,
            {
                job["job_id"]: upload_key(job["job_id"], request.filename)
                for job, request in zip(jobs, requests, strict=True)
            },
        )
        return {"jobs": jobs} if bulk else jobs[0]
