"""The service's HTTP API as Python: upload through the presigned POST, then poll the job."""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests

DEFAULT_URL = "http://127.0.0.1:8000"
FINAL_STATUSES = frozenset({"DONE", "FAILED"})
# Photos per bulk enrollment request: the service's FACEREC_MAX_PHOTOS_PER_REQUEST default.
BULK_PHOTOS = 100


def _content_type(photo: Path) -> str:
    return mimetypes.guess_type(photo.name)[0] or "application/octet-stream"


class FacerecError(Exception):
    """The service refused a request; the message is the service's own."""


class JobFailed(FacerecError):
    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__(f"job {job['job_id']} failed ({job.get('error')}): {job.get('message')}")
        self.job = job


class FacerecClient:
    def __init__(self, url: str = DEFAULT_URL, *, admin_token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._admin = {"X-Admin-Token": admin_token} if admin_token else {}
        self._timeout = timeout
        self._http = requests.Session()

    def submit(self, photo: Path | str, data: bytes | None = None) -> dict[str, Any]:
        """Create a recognition job and upload the photo; the job, not yet done."""
        return self._create_and_upload("/jobs", Path(photo), data, headers={})

    def enroll(self, person_id: str, photo: Path | str, data: bytes | None = None) -> dict[str, Any]:
        """Upload one photo of an existing person; the enrollment job, not yet done."""
        return self._create_and_upload(f"/people/{person_id}/photos", Path(photo), data, headers=self._admin)

    def enroll_many(
        self, person_id: str, photos: Sequence[Path], *, on_upload: Callable[[Path], None] | None = None
    ) -> list[dict[str, Any]]:
        """Upload many photos of an existing person, a request per 100 photos (the service's
        bulk form); the enrollment jobs in the photos' order, not yet done."""
        jobs: list[dict[str, Any]] = []
        for start in range(0, len(photos), BULK_PHOTOS):
            chunk = [Path(photo) for photo in photos[start : start + BULK_PHOTOS]]
            body = {"photos": [{"filename": p.name, "content_type": _content_type(p)} for p in chunk]}
            created = self._json("POST", f"/people/{person_id}/photos", json=body, headers=self._admin)["jobs"]
            for photo, job in zip(chunk, created):
                self._upload(job["upload"], photo, None)
                if on_upload is not None:
                    on_upload(photo)
            jobs += created
        return jobs

    def create_person(self, person_id: str, display_name: str | None = None) -> dict[str, Any]:
        body = {"person_id": person_id, "display_name": display_name or person_id}
        return self._json("POST", "/people", json=body, headers=self._admin)

    def people(self) -> list[dict[str, Any]]:
        return self._json("GET", "/people", headers=self._admin)["people"]

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/jobs/{job_id}")

    def wait(self, job_id: str, *, timeout: float = 300.0, poll: float = 0.5,
             on_status: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Poll until the job is DONE (its document) or FAILED (JobFailed); TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            job = self.job(job_id)
            if on_status is not None and job["status"] != last:
                on_status(job)
                last = job["status"]
            if job["status"] == "FAILED":
                raise JobFailed(job)
            if job["status"] == "DONE":
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['status']} after {timeout:.0f} s")
            time.sleep(poll)

    def _create_and_upload(self, path: str, photo: Path, data: bytes | None, headers: dict[str, str]) -> dict[str, Any]:
        job = self._json("POST", path, json={"filename": photo.name, "content_type": _content_type(photo)}, headers=headers)
        self._upload(job["upload"], photo, data)
        return job

    def _upload(self, slot: dict[str, Any], photo: Path, data: bytes | None) -> None:
        body = data if data is not None else photo.read_bytes()
        response = self._http.post(
            slot["url"], data=slot["fields"], files={"file": (photo.name, body, _content_type(photo))}, timeout=self._timeout
        )
        if response.status_code >= 300:
            raise FacerecError(f"upload of {photo.name} refused ({response.status_code}): {response.text[:300]}")

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, self.url + path, timeout=self._timeout, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("message") or response.text
            except ValueError:
                detail = response.text
            raise FacerecError(f"{method} {path}: {response.status_code}: {detail}")
        return response.json() if response.content else None
