"""Enrollment uploads: one job and presigned upload per photo, one request for many photos, and
each photo's upload key noted on the person's record so that deleting the person finds it."""

from __future__ import annotations

from typing import Any, Mapping

from .api import JobsApi
from .config import Settings
from .contract import JobKind, upload_key
from .exceptions import BadRequestError, NotFoundError
from .people import PeopleStore
from .uploads import UploadRequest

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
        requests = self._requests(body) if bulk else [UploadRequest.from_body(body, self._settings)]
        if self._people.get(person_id) is None:
            raise NotFoundError(f"no person {person_id!r}: create them first (POST /people)")
        jobs = [self._jobs_api.create(request, JobKind.ENROLL, person=person_id) for request in requests]
        self._people.record_uploads(
            person_id, {job["job_id"]: upload_key(job["job_id"], request.filename) for job, request in zip(jobs, requests)}
        )
        return {"jobs": jobs} if bulk else jobs[0]

    def _requests(self, body: Mapping[str, Any]) -> list[UploadRequest]:
        photos, limit = body["photos"], self._settings.max_photos_per_request
        if set(body) != {"photos"} or not isinstance(photos, list) or not 0 < len(photos) <= limit:
            raise BadRequestError(f'send {{"photos": [{{"filename": ..., "content_type": ...}}, ...]}} with 1 to {limit} photos')
        return [UploadRequest.from_body(photo, self._settings) for photo in photos]
