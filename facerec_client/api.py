"""The service's HTTP API as Python: upload through the presigned POST, then poll the job or batch.

Several photos go as batches (one request for up to 100 upload slots, one to start them, one
poll for all of them); every poll sends the last ETag and waits as `polling` says.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from .polling import Backoff, retry_after_seconds

DEFAULT_URL = "http://127.0.0.1:8000"
# The API key `make run` accepts unless told otherwise; a deployed stage's comes from API Gateway.
LOCAL_API_KEY = "local-api-key"
API_KEY_HEADER = "X-Api-Key"
# Polls pause 0.5 s, then half as long again each time, up to 5 s (Backoff is frozen: one serves
# all).
DEFAULT_BACKOFF = Backoff()
# A request the gateway throttled (429) is sent again after its Retry-After, this many times,
# when that wait is at most MAX_THROTTLED_WAIT_SECONDS (a spent daily quota's is hours).
THROTTLED_RETRIES = 5
MAX_THROTTLED_WAIT_SECONDS = 30.0
FINAL_STATUSES = frozenset({"DONE", "FAILED"})
# Photos per batch and per bulk enrollment request: the service's FACEREC_MAX_PHOTOS_PER_REQUEST
# default.
BULK_PHOTOS = 100
# A batch's photos go to storage side by side; the session's pool keeps 10 connections a host.
UPLOADS_AT_ONCE = 8
# What a photo whose upload failed here ends as, in place of the service's `photo_missing`.
UPLOAD_FAILED = "upload_failed"


def _content_type(photo: Path) -> str:
    return mimetypes.guess_type(photo.name)[0] or "application/octet-stream"


def _describe(photo: Path) -> dict[str, str]:
    return {"filename": photo.name, "content_type": _content_type(photo)}


def _chunks(photos: Sequence[Path | str]) -> list[list[Path]]:
    return [
        [Path(photo) for photo in photos[start : start + BULK_PHOTOS]]
        for start in range(0, len(photos), BULK_PHOTOS)
    ]


class FacerecError(Exception):
    """The service refused a request; the message is the service's own."""


class JobFailed(FacerecError):
    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__(f"job {job['job_id']} failed ({job.get('error')}): {job.get('message')}")
        self.job = job


class FacerecClient:
    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        admin_token: str | None = None,
        api_key: str | None = LOCAL_API_KEY,
        timeout: float = 30.0,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        self.url = url.rstrip("/")
        self._admin = {"X-Admin-Token": admin_token} if admin_token else {}
        # Sent to the API only: the presigned uploads go to storage, which must not see it.
        self._key = {API_KEY_HEADER: api_key} if api_key else {}
        self._timeout = timeout
        self._backoff = backoff
        self._http = requests.Session()

    def submit(self, photo: Path | str, data: bytes | None = None) -> dict[str, Any]:
        """Create a recognition job and upload the photo; the job, not yet done."""
        return self._create_and_upload("/jobs", Path(photo), data, headers={})

    def submit_batch(self, photos: Sequence[Path | str]) -> dict[str, Any]:
        """Create a batch of up to 100 photos, upload each to its slot, and start it; the batch's
        status, not yet final.

        A photo whose upload fails does not sink the others: the service records it FAILED
        (`photo_missing`) when the batch starts, and the answer's `upload_errors` keeps why, by
        the photo's index, since only this side knows.
        """
        paths = [Path(photo) for photo in photos]
        created = self._json(
            "POST", "/batches", json={"photos": [_describe(path) for path in paths]}
        )
        upload_errors: dict[int, str] = {}

        def upload(slot: dict[str, Any]) -> None:
            try:
                self._upload(slot["upload"], paths[slot["index"]], None)
            except (FacerecError, OSError) as exc:  # requests' errors are OSErrors
                upload_errors[slot["index"]] = str(exc)

        with ThreadPoolExecutor(max_workers=UPLOADS_AT_ONCE) as pool:
            list(pool.map(upload, created["photos"]))
        started = self._json("POST", f"/batches/{created['batch_id']}/start")
        return {**started, "upload_errors": upload_errors}

    def recognize_many(
        self,
        photos: Sequence[Path | str],
        *,
        timeout: float = 300.0,
        on_photo: Callable[[Path, dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Every photo through batches of up to 100, all sent before any is waited for, so the
        fleet works on the first while the last upload; each photo's batch entry (DONE with its
        `result`, or FAILED with `error` and `message`) in the photos' order. `on_photo` sees
        each photo once, as it ends; TimeoutError after `timeout` for any one batch."""
        chunks = _chunks(photos)
        batches = [self.submit_batch(chunk) for chunk in chunks]
        return [
            entry
            for chunk, batch in zip(chunks, batches, strict=True)
            for entry in self._wait_sent(chunk, batch, timeout, on_photo)
        ]

    def _wait_sent(
        self,
        photos: list[Path],
        batch: dict[str, Any],
        timeout: float,
        on_photo: Callable[[Path, dict[str, Any]], None] | None,
    ) -> list[dict[str, Any]]:
        """One batch that submit_batch sent, waited for; its entries, failed uploads told as
        such."""
        entries: list[dict[str, Any]] = [{} for _ in photos]

        def settle(entry: dict[str, Any]) -> None:
            reason = batch["upload_errors"].get(entry["index"])
            if reason is not None:
                entry = {**entry, "status": "FAILED", "error": UPLOAD_FAILED, "message": reason}
            entries[entry["index"]] = entry
            if on_photo is not None:
                on_photo(photos[entry["index"]], entry)

        self.wait_batch(batch["batch_id"], timeout=timeout, on_photo=settle)
        return entries

    def enroll(
        self, person_id: str, photo: Path | str, data: bytes | None = None
    ) -> dict[str, Any]:
        """Upload one photo of an existing person; the enrollment job, not yet done."""
        return self._create_and_upload(
            f"/people/{person_id}/photos", Path(photo), data, headers=self._admin
        )

    def enroll_many(
        self,
        person_id: str,
        photos: Sequence[Path],
        *,
        on_upload: Callable[[Path], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Upload many photos of an existing person, a request per 100 photos (the service's
        bulk form); the enrollment jobs in the photos' order, not yet done."""
        jobs: list[dict[str, Any]] = []
        for chunk in _chunks(photos):
            body = {"photos": [_describe(photo) for photo in chunk]}
            created = self._json(
                "POST", f"/people/{person_id}/photos", json=body, headers=self._admin
            )["jobs"]
            for photo, job in zip(chunk, created, strict=True):
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
        """The job's status; with the admin token, its result's distances too (the operator's
        view)."""
        return self._json("GET", f"/jobs/{job_id}", headers=self._admin)

    def wait(
        self,
        job_id: str,
        *,
        timeout: float = 300.0,
        on_status: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job is DONE (its document) or FAILED (JobFailed); TimeoutError after
        `timeout`."""
        last: str | None = None

        def changed(job: dict[str, Any]) -> None:
            nonlocal last
            if on_status is not None and job["status"] != last:
                on_status(job)
                last = job["status"]

        job = self._poll(
            f"/jobs/{job_id}",
            f"job {job_id}",
            lambda job: job["status"] in FINAL_STATUSES,
            timeout=timeout,
            on_change=changed,
        )
        if job["status"] == "FAILED":
            raise JobFailed(job)
        return job

    def wait_batch(
        self,
        batch_id: str,
        *,
        timeout: float = 300.0,
        on_photo: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until every photo of the batch is DONE or FAILED; the batch's last status.
        `on_photo` sees each photo's entry once, when it ends; TimeoutError after `timeout`."""
        ended: set[int] = set()

        def changed(batch: dict[str, Any]) -> None:
            for entry in batch["photos"]:
                if (
                    on_photo is not None
                    and entry["status"] in FINAL_STATUSES
                    and entry["index"] not in ended
                ):
                    ended.add(entry["index"])
                    on_photo(entry)

        return self._poll(
            f"/batches/{batch_id}",
            f"batch {batch_id}",
            lambda batch: batch["final"],
            timeout=timeout,
            on_change=changed,
        )

    def _poll(
        self,
        path: str,
        what: str,
        finished: Callable[[dict[str, Any]], bool],
        *,
        timeout: float,
        on_change: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        """GET `path` until `finished` says so, sending the last ETag: an unchanged answer is a 304
        without a body, and the last body stands. Between requests, the backoff's next pause or
        the server's Retry-After, whichever is longer."""
        deadline = time.monotonic() + timeout
        pauses = self._backoff.pauses()
        body: dict[str, Any] = {}
        etag: str | None = None
        while True:
            # The admin token, when this client has one, asks for the operator's view (distances).
            response = self._request(
                "GET", path, headers={**self._admin, **({"If-None-Match": etag} if etag else {})}
            )
            if response.status_code != 304:
                body, etag = self._body(response), response.headers.get("ETag")
                on_change(body)
            if finished(body):
                return body
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} is still {body['status']} after {timeout:.0f} s")
            time.sleep(max(next(pauses), retry_after_seconds(response.headers.get("Retry-After"))))

    def _create_and_upload(
        self, path: str, photo: Path, data: bytes | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        job = self._json("POST", path, json=_describe(photo), headers=headers)
        self._upload(job["upload"], photo, data)
        return job

    def _upload(self, slot: dict[str, Any], photo: Path, data: bytes | None) -> None:
        body = data if data is not None else photo.read_bytes()
        response = self._http.post(
            slot["url"],
            data=slot["fields"],
            files={"file": (photo.name, body, _content_type(photo))},
            timeout=self._timeout,
        )
        if response.status_code >= 300:
            raise FacerecError(
                f"upload of {photo.name} refused ({response.status_code}): {response.text[:300]}"
            )

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._body(self._request(method, path, **kwargs))

    def _request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = {**self._key, **(headers or {})}
        for attempt in range(1 + THROTTLED_RETRIES):
            response = self._http.request(
                method, self.url + path, headers=headers, timeout=self._timeout, **kwargs
            )
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if (
                response.status_code != 429
                or wait > MAX_THROTTLED_WAIT_SECONDS
                or attempt == THROTTLED_RETRIES
            ):
                break
            time.sleep(max(1.0, wait))
        if response.status_code >= 400:
            try:
                detail = response.json().get("message") or response.text
            except ValueError:
                detail = response.text
            raise FacerecError(f"{method} {path}: {response.status_code}: {detail}")
        return response

    @staticmethod
    def _body(response: requests.Response) -> Any:
        return response.json() if response.content else None
