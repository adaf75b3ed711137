"""Batches: up to 100 photos recognized for the price of a few requests.

One `POST /batches` hands out every photo's presigned upload; one `POST /batches/{id}/start` lists
what arrived, records each photo's job (QUEUED, or FAILED at once when its upload is missing or
unusable) and starts one workflow execution, which enqueues the photos ten a SendMessageBatch and
asks for workers once; `GET /batches/{id}` answers every photo's status and result from one
BatchGetItem and the few result objects the workers wrote, with an ETag so that a poll that finds
nothing new reads nothing more. The single-photo path pays all of that per photo.

The batch's own record lives in the jobs table under its id (kind BATCH) and moves through the
workflow as a job does: AWAITING_UPLOAD, claimed by the start, QUEUED by the workflow, FAILED if
the workflow fails (then its photos still waiting are reported failed with it). Each photo is a
RECOGNIZE job of its own, so the workers' claims and outcomes hold exactly once per photo, and
`GET /jobs/{id}` answers for it as for any job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .config import Settings
from .contract import (
    TERMINAL_STATUSES,
    JobKind,
    JobMessage,
    JobStatus,
    batch_job_id,
    batch_upload_key,
    batch_upload_prefix,
    is_job_id,
    utc_now_iso,
)
from .exceptions import NotFoundError, StorageError
from .failures import client_failure
from .jobs import JobStore, new_job_id
from .polling import PollAnswer, poll_headers, waited_seconds
from .results import ResultReader, ResultView
from .uploads import UploadRequest, UploadSigner, check_uploaded_object, photo_requests
from .workflow import WorkflowStarter

__all__ = ["Batch", "BatchesApi"]

# SendMessageBatch takes at most this many entries: the workflow sends one chunk a call.
_SQS_BATCH = 10
# What a poll reads of each photo's job.
# The summary names who was recognized: a deletion redacts it, and that must change the ETag.
_PHOTO_ATTRIBUTES = ("status", "error", "result_key", "summary")


@dataclass(frozen=True)
class Batch:
    """A batch as `POST /batches` creates it: its photos' names and types, in the client's order."""

    job_id: str
    photos: tuple[UploadRequest, ...]
    created_epoch: int
    upload_expires_epoch: int
    ttl_epoch: int

    def to_item(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "kind": JobKind.BATCH.value,
            "status": JobStatus.AWAITING_UPLOAD.value,
            "photos": [
                {"filename": p.filename, "content_type": p.content_type} for p in self.photos
            ],
            "created_at": utc_now_iso(lambda: self.created_epoch),
            "upload_expires_epoch": self.upload_expires_epoch,
            "ttl_epoch": self.ttl_epoch,
        }


class BatchesApi:
    def __init__(
        self,
        jobs: JobStore,
        signer: UploadSigner,
        s3_client: Any,
        starter: WorkflowStarter,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._jobs = jobs
        self._signer = signer
        self._s3 = s3_client
        self._starter = starter
        self._settings = settings
        self._clock = clock
        self._results = ResultReader(s3_client, settings.output_bucket)

    def create(self, body: Any) -> dict[str, Any]:
        """A batch waiting for its photos, and each photo's presigned POST."""
        requests = photo_requests(body, self._settings)
        now = int(self._clock())
        batch = Batch(
            job_id=new_job_id(),
            photos=tuple(requests),
            created_epoch=now,
            upload_expires_epoch=now + self._settings.upload_expiry_seconds,
            ttl_epoch=now + self._settings.job_ttl_seconds,
        )
        self._jobs.create(batch)
        photos = [
            {
                "index": index,
                "job_id": batch_job_id(batch.job_id, index),
                "filename": request.filename,
                "upload": self._signer.presign(
                    batch_upload_key(batch.job_id, index, request.filename), request.content_type
                ).to_body(),
            }
            for index, request in enumerate(requests)
        ]
        return {
            **_summary(batch.job_id, JobStatus.AWAITING_UPLOAD.value, final=False),
            "start_url": f"/batches/{batch.job_id}/start",
            "photos": photos,
        }

    def start(self, batch_id: str, view: ResultView) -> PollAnswer:
        """Record the photos that arrived and start the batch's workflow; a batch started before
        answers its status as `view` sees it (a client that lost the answer may start again)."""
        batch = self._batch(batch_id)
        claimed = None
        if batch["status"] == JobStatus.AWAITING_UPLOAD.value:
            claimed = self._jobs.claim_upload(batch_id, self._settings.upload_claim_stale_seconds)
        if claimed is None:
            return self.status(batch_id, None, view)
        try:
            self._start_claimed(claimed)
        except Exception:
            # The next start tries again rather than waiting for the claim to go stale.
            self._jobs.release_claim(batch_id)
            raise
        answer = self.status(batch_id, None, view)
        return PollAnswer(202, answer.body, answer.headers)

    def status(self, batch_id: str, if_none_match: str | None, view: ResultView) -> PollAnswer:
        """Every photo's status, and the results of those done as `view` sees them; 304 when
        nothing changed. The view is part of the ETag, as a job's is (`JobsApi.poll`)."""
        batch = self._batch(batch_id)
        job_ids = [batch_job_id(batch_id, index) for index in range(len(batch["photos"]))]
        started = (
            batch["status"] != JobStatus.AWAITING_UPLOAD.value or "upload_claimed_epoch" in batch
        )
        records = self._jobs.records(job_ids, _PHOTO_ATTRIBUTES) if started else {}
        photos = [_photo_state(batch, records.get(job_id)) for job_id in job_ids]
        statuses = [photo["status"] for photo in photos]
        headers = poll_headers(
            [batch["status"], photos, view.value],
            statuses,
            waited_seconds(batch, self._clock()),
            self._settings.max_retry_after_seconds,
        )
        if if_none_match == headers["ETag"]:
            return PollAnswer(304, None, headers)
        done = {
            job_id: records[job_id]
            for job_id, photo in zip(job_ids, photos, strict=True)
            if photo["status"] == JobStatus.DONE.value
        }
        results = self._results.read(done, view)
        body_photos = []
        for index, (job_id, photo) in enumerate(zip(job_ids, photos, strict=True)):
            entry = {
                "index": index,
                "job_id": job_id,
                "filename": batch["photos"][index]["filename"],
                "status": photo["status"],
            }
            if job_id in results:
                entry["result"] = results[job_id]
            elif photo["status"] == JobStatus.FAILED.value:
                entry.update(client_failure(photo["error"]))
            body_photos.append(entry)
        counts = {status.value: statuses.count(status.value) for status in JobStatus}
        final = "Retry-After" not in headers
        body: dict[str, Any] = {
            **_summary(batch_id, _batch_status(statuses, final), final=final),
            "counts": counts,
            "photos": body_photos,
            **{k: batch[k] for k in ("created_at", "queued_at") if k in batch},
        }
        return PollAnswer(200, body, headers)

    def _batch(self, batch_id: str) -> dict[str, Any]:
        item = self._jobs.get(batch_id) if is_job_id(batch_id) else None
        if item is None or item.get("kind") != JobKind.BATCH.value:
            raise NotFoundError(f"no batch {batch_id!r}: create one with POST /batches")
        return item

    def _start_claimed(self, batch: dict[str, Any]) -> None:
        batch_id = batch["job_id"]
        arrived = self._arrived(batch_id)
        queued: list[JobMessage] = []
        items = []
        now = utc_now_iso(self._clock)
        for index, photo in enumerate(batch["photos"]):
            job_id = batch_job_id(batch_id, index)
            key = batch_upload_key(batch_id, index, photo["filename"])
            item = {
                "job_id": job_id,
                "kind": JobKind.RECOGNIZE.value,
                "batch_id": batch_id,
                "upload_key": key,
                "created_at": batch["created_at"],
                "ttl_epoch": batch["ttl_epoch"],
            }
            refusal = self._refusal(arrived.get(key), photo, batch)
            if refusal is None:
                item.update(status=JobStatus.QUEUED.value, queued_at=now)
                queued.append(
                    JobMessage(
                        job_id=job_id,
                        kind=JobKind.RECOGNIZE,
                        bucket=self._settings.input_bucket,
                        key=key,
                    )
                )
            else:
                item.update(
                    status=JobStatus.FAILED.value,
                    error=refusal[0],
                    cause=refusal[1],
                    finished_at=now,
                )
            items.append(item)
        self._jobs.put_all(items)
        if not queued:
            self._jobs.fail(
                batch_id, "no_photos", "none of the batch's photos arrived in a usable form"
            )
            return
        entries = [
            {"Id": str(i), "MessageBody": message.to_json()} for i, message in enumerate(queued)
        ]
        self._starter.start(
            batch_id,
            {
                "job_id": batch_id,
                "kind": JobKind.BATCH.value,
                "message_batches": [
                    entries[at : at + _SQS_BATCH] for at in range(0, len(entries), _SQS_BATCH)
                ],
            },
        )

    def _arrived(self, batch_id: str) -> dict[str, dict[str, Any]]:
        """The batch's uploaded objects by key: one LIST for up to 1000 photos, not a HEAD each."""
        prefix = batch_upload_prefix(batch_id)
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self._settings.input_bucket, Prefix=prefix
            )
            return {obj["Key"]: obj for page in pages for obj in page.get("Contents", [])}
        except ClientError as exc:
            raise StorageError(f"could not list the photos under {prefix}", exc) from exc

    def _refusal(
        self, obj: Mapping[str, Any] | None, photo: Mapping[str, Any], batch: Mapping[str, Any]
    ) -> tuple[str, str] | None:
        """Why a photo is failed before any worker sees it (a code and its particulars); None when
        it goes on.

        A LIST gives no content type: the presigned POST's policy holds it to the requested type on
        AWS, and the engine refuses what it cannot decode."""
        if obj is None:
            return ("photo_missing", "the photo was not uploaded before the batch started")
        refusal = check_uploaded_object(
            size=int(obj["Size"]),
            content_type=photo["content_type"],
            uploaded_epoch=obj["LastModified"].timestamp(),
            job={
                "content_type": photo["content_type"],
                "upload_expires_epoch": batch["upload_expires_epoch"],
            },
            settings=self._settings,
        )
        return None if refusal is None else (refusal.code, refusal.cause)


def _photo_state(batch: Mapping[str, Any], record: Mapping[str, Any] | None) -> dict[str, Any]:
    """A photo's status and error as a client sees them: a photo still waiting in a batch whose
    workflow failed failed with it."""
    if record is None:
        status = (
            JobStatus.AWAITING_UPLOAD.value
            if batch["status"] == JobStatus.AWAITING_UPLOAD.value
            else JobStatus.QUEUED.value
        )
        record = {"status": status}
    if (
        batch["status"] == JobStatus.FAILED.value
        and JobStatus(record["status"]) not in TERMINAL_STATUSES
    ):
        return {"status": JobStatus.FAILED.value, "error": batch.get("error"), "result_key": None}
    return {
        "status": record["status"],
        "error": record.get("error"),
        "result_key": record.get("result_key"),
        "summary": record.get("summary"),
    }


def _batch_status(statuses: list[str], final: bool) -> str:
    """One word for the whole batch; each photo's own status says more."""
    if final:
        return JobStatus.DONE.value
    if all(status == JobStatus.AWAITING_UPLOAD.value for status in statuses):
        return JobStatus.AWAITING_UPLOAD.value
    if all(status == JobStatus.QUEUED.value for status in statuses):
        return JobStatus.QUEUED.value
    return JobStatus.PROCESSING.value


def _summary(batch_id: str, status: str, *, final: bool) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "status": status,
        "status_url": f"/batches/{batch_id}",
        "final": final,
    }
