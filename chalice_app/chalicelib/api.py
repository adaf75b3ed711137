"""What the routes do, without Chalice: create jobs, report them, and the seed's blocking upload."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .compat import UploadedFile, format_answer
from .config import Settings
from .contract import (
    TERMINAL_STATUSES,
    JobKind,
    JobStatus,
    is_job_id,
    upload_key,
    upload_size_problem,
)
from .exceptions import BadRequestError, NotFoundError
from .failures import client_failure
from .jobs import Job, JobStore, new_job_id
from .outlook import WaitOutlook
from .polling import PollAnswer, poll_headers, retry_after_seconds, waited_seconds
from .results import ResultReader, ResultView
from .uploads import UploadRequest, UploadSigner
from .waiting import JobWaiter

__all__ = ["CompatAnswer", "JobsApi", "sniff_image_type"]

# The formats the engine reads, by the bytes at given offsets that mark them.
_SIGNATURES: tuple[tuple[str, tuple[tuple[int, bytes], ...]], ...] = (
    ("image/jpeg", ((0, b"\xff\xd8\xff"),)),
    ("image/png", ((0, b"\x89PNG\r\n\x1a\n"),)),
    ("image/webp", ((0, b"RIFF"), (8, b"WEBP"))),  # a RIFF container whose form type is WEBP
)


def sniff_image_type(data: bytes) -> str | None:
    """The type the bytes say they are: the seed's clients send parts without a Content-Type."""
    return next(
        (
            kind
            for kind, marks in _SIGNATURES
            if all(data[at : at + len(magic)] == magic for at, magic in marks)
        ),
        None,
    )


@dataclass(frozen=True)
class CompatAnswer:
    """Either the seed's plain-text answer, or the job to poll (202, its next poll's time in
    `retry_after`) when the answer is not expected within the hold, or the hold ran out."""

    status_code: int
    text: str | None = None
    body: dict[str, Any] | None = None
    retry_after: int | None = None


class JobsApi:
    """The job routes' work: a job record and an upload slot, a job's status, the seed's route."""

    def __init__(
        self,
        jobs: JobStore,
        signer: UploadSigner,
        s3_client: Any,
        settings: Settings,
        outlook: WaitOutlook,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._jobs = jobs
        self._outlook = outlook
        self._signer = signer
        self._s3 = s3_client
        self._settings = settings
        self._clock = clock
        self._waiter = JobWaiter(jobs, settings.compat_poll_seconds)
        self._results = ResultReader(s3_client, settings.output_bucket)

    def create(
        self, request: UploadRequest, kind: JobKind, person: str | None = None
    ) -> dict[str, Any]:
        """A new job waiting for its photo, and the presigned POST to upload it with."""
        job = self._new_job(request, kind, person)
        upload = self._signer.presign(job.upload_key, request.content_type)
        return {
            **self._summary(job.job_id, kind, JobStatus.AWAITING_UPLOAD),
            "upload": upload.to_body(),
        }

    def poll(self, job_id: str, if_none_match: str | None, view: ResultView) -> PollAnswer:
        """The job's status (and result, once DONE, as `view` sees it) with its ETag; 304 with no
        result read when the client's ETag still holds. The view is part of the ETag: a client
        that gains or drops the admin token must not keep the other view's body."""
        item = self._record(job_id)
        headers = poll_headers(
            # The summary names who was recognized; a deletion redacts it, and the ETag must change.
            [
                item["status"],
                item.get("result_key"),
                item.get("error"),
                item.get("summary"),
                view.value,
            ],
            [item["status"]],
            waited_seconds(item, self._clock()),
            self._settings.max_retry_after_seconds,
        )
        if if_none_match == headers["ETag"]:
            return PollAnswer(304, None, headers)
        return PollAnswer(200, self._body(item, view), headers)

    def _record(self, job_id: str) -> dict[str, Any]:
        item = self._jobs.get(job_id) if is_job_id(job_id) else None
        if item is None or item["kind"] == JobKind.BATCH.value:
            raise NotFoundError(f"no job {job_id!r}")
        return item

    def _body(self, item: dict[str, Any], view: ResultView) -> dict[str, Any]:
        # What a client sees of the record: its cause stays in the table and the logs.
        job_id, status = item["job_id"], JobStatus(item["status"])
        body = self._summary(job_id, JobKind(item["kind"]), status)
        body.update(
            {
                k: item[k]
                for k in ("created_at", "queued_at", "finished_at", "person", "batch_id")
                if k in item
            }
        )
        if status is JobStatus.DONE:
            body["result"] = self._results.read({job_id: item}, view)[job_id]
        elif status is JobStatus.FAILED:
            body.update(client_failure(item.get("error")))
        return body

    def recognize_and_wait(self, upload: UploadedFile) -> CompatAnswer:
        """Store the photo as a recognition job and hold, within `compat_wait_seconds`, for it to
        finish; answer 202 at once when it is expected to take longer (a cold fleet's boot, a
        backlog): a held function waits at the account's expense (chalicelib.outlook)."""
        if not upload.data:
            raise BadRequestError("the inputFile part is empty")
        too_large = upload_size_problem(len(upload.data), self._settings.max_upload_bytes)
        if too_large:
            raise BadRequestError(too_large)
        content_type = sniff_image_type(upload.data)
        if content_type not in self._settings.allowed_content_types:
            raise BadRequestError(
                f"inputFile is not one of {', '.join(self._settings.allowed_content_types)}"
            )
        request = UploadRequest.from_body(
            {"filename": upload.filename, "content_type": content_type}, self._settings
        )
        job = self._new_job(request, JobKind.RECOGNIZE, None)
        self._signer.put(job.upload_key, upload.data, content_type)
        hold = self._settings.compat_wait_seconds
        expected = self._outlook.expected_wait_seconds()
        if expected <= hold:
            self._waiter.wait(job.job_id, hold)
        # The seed's route takes no admin token: a job done since the wait gave up is answered
        # publicly.
        item = self._record(job.job_id)
        body = self._body(item, ResultView.PUBLIC)
        if not body["final"]:
            # Poll when the answer is expected, or, once the hold ran out, as the status route says.
            waited = max(expected, waited_seconds(item, self._clock()))
            retry_after = retry_after_seconds(
                [item["status"]], waited, self._settings.max_retry_after_seconds
            )
            return CompatAnswer(202, body=body, retry_after=retry_after)
        if body["status"] == JobStatus.DONE.value:
            return CompatAnswer(200, text=format_answer(upload.filename, body["result"]))
        return CompatAnswer(
            422, body={"error": body["error"], "message": body["message"], "job": body}
        )

    def _new_job(self, request: UploadRequest, kind: JobKind, person: str | None) -> Job:
        now = int(self._clock())
        job_id = new_job_id()
        job = Job(
            job_id=job_id,
            kind=kind,
            upload_key=upload_key(job_id, request.filename),
            content_type=request.content_type,
            created_epoch=now,
            upload_expires_epoch=now + self._settings.upload_expiry_seconds,
            ttl_epoch=now + self._settings.job_ttl_seconds,
            person=person,
        )
        self._jobs.create(job)
        return job

    @staticmethod
    def _summary(job_id: str, kind: JobKind, status: JobStatus) -> dict[str, Any]:
        return {
            "job_id": job_id,
            "kind": kind.value,
            "status": status.value,
            "status_url": f"/jobs/{job_id}",
            "final": status in TERMINAL_STATUSES,
        }
