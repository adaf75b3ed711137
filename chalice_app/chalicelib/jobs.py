"""The jobs table: one item per job, keyed by job_id, moved forward only by conditional writes."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from .contract import (
    IDENTITIES,
    RECORD_FAILED_UNTAKEN,
    Clock,
    JobKind,
    JobStatus,
    batch_get_all,
    is_conditional_failure,
    scan_pages,
    utc_now_iso,
)
from .exceptions import JobStoreError

__all__ = ["Job", "JobStore", "NewRecord", "new_job_id"]

# Records a Scan evaluates per call when looking for a person's recognitions (1 MB is DynamoDB's own
# cap).
_SCAN_PAGE = 1000


def new_job_id() -> str:
    """32 URL-safe characters (192 random bits): knowing a job id is the only credential to read
    it."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Job:
    """A job as the API creates it, before its photo is uploaded."""

    job_id: str
    kind: JobKind
    upload_key: str
    content_type: str
    created_epoch: int
    upload_expires_epoch: int
    ttl_epoch: int
    person: str | None = None

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "job_id": self.job_id,
            "kind": self.kind.value,
            "status": JobStatus.AWAITING_UPLOAD.value,
            # The file name is the key's last part: not stored twice in an item paid for by the KB.
            "upload_key": self.upload_key,
            "content_type": self.content_type,
            "created_at": utc_now_iso(lambda: self.created_epoch),
            "upload_expires_epoch": self.upload_expires_epoch,
            # DynamoDB's TTL deletes the record days after the job, as the bucket's lifecycle
            # rule deletes the photo.
            "ttl_epoch": self.ttl_epoch,
        }
        if self.person is not None:
            item["person"] = self.person
        return item


class NewRecord(Protocol):
    """A record the API creates: a job, or a batch (chalicelib.batches)."""

    @property
    def job_id(self) -> str: ...

    def to_item(self) -> dict[str, Any]: ...


class JobStore:
    """Reads and writes job records; every status change is conditional on the current status."""

    def __init__(self, table: Any, clock: Clock = time.time) -> None:
        self._table = table
        self._clock = clock

    def create(self, job: NewRecord) -> None:
        try:
            self._table.put_item(
                Item=job.to_item(),
                # A random id never collides in practice; if it ever does, refuse rather than
                # overwrite another client's job.
                ConditionExpression="attribute_not_exists(job_id)",
            )
        except ClientError as exc:
            raise JobStoreError(f"could not create job {job.job_id}", exc) from exc

    def create_queued(self, job_id: str, kind: JobKind, ttl_epoch: int) -> None:
        """A job with no photo to wait for (a compaction), queued from the start."""
        item = {
            "job_id": job_id,
            "kind": kind.value,
            "status": JobStatus.QUEUED.value,
            "created_at": utc_now_iso(self._clock),
            "queued_at": utc_now_iso(self._clock),
            "ttl_epoch": ttl_epoch,
        }
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")
        except ClientError as exc:
            raise JobStoreError(f"could not create job {job_id}", exc) from exc

    def naming(self, person_id: str) -> Iterator[list[dict[str, Any]]]:
        """The recognitions whose summary names the person, a page at a time (each page at most
        `_SCAN_PAGE` records evaluated): job id, result key, upload key and summary. A Scan with a
        filter, read to the end: deletions are rare, and records expire (ttl_epoch), so the table
        holds a few days of jobs."""
        pages = scan_pages(
            self._table,
            FilterExpression="contains(#summary.#identities, :person)",
            ProjectionExpression="job_id, result_key, upload_key, #summary",
            ExpressionAttributeNames={"#summary": "summary", "#identities": IDENTITIES},
            ExpressionAttributeValues={":person": person_id},
            Limit=_SCAN_PAGE,
        )
        try:
            yield from (items for items in pages if items)
        except ClientError as exc:
            raise JobStoreError("could not scan the jobs for a person's recognitions", exc) from exc

    def redact_identities(self, job_id: str, identities: list[str | None]) -> None:
        """Replace a recognition's summary of whom it named (a deleted person taken out)."""
        try:
            self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET #summary.#identities = :identities",
                # A record that expired meanwhile is not written back into being.
                ConditionExpression="attribute_exists(job_id)",
                ExpressionAttributeNames={"#summary": "summary", "#identities": IDENTITIES},
                ExpressionAttributeValues={":identities": identities},
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise JobStoreError(f"could not redact job {job_id}", exc) from exc

    def delete(self, job_ids: list[str]) -> None:
        """Forget these jobs' records (a deleted person's enrollments)."""
        try:
            with self._table.batch_writer() as batch:
                for job_id in job_ids:
                    batch.delete_item(Key={"job_id": job_id})
        except ClientError as exc:
            raise JobStoreError(f"could not delete {len(job_ids)} jobs", exc) from exc

    def put_all(self, items: Iterable[dict[str, Any]]) -> None:
        """Write many new records, 25 a call (a batch's photos as it starts). Unconditional:
        only the caller holding the batch's start claim writes them, before any is enqueued."""
        items = list(items)
        try:
            with self._table.batch_writer() as batch:
                for item in items:
                    batch.put_item(Item=item)
        except ClientError as exc:
            raise JobStoreError(f"could not write {len(items)} jobs", exc) from exc

    def get(self, job_id: str) -> dict[str, Any] | None:
        try:
            return self._table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
        except ClientError as exc:
            raise JobStoreError(f"could not read job {job_id}", exc) from exc

    def statuses(self, job_ids: list[str]) -> dict[str, str]:
        """Several jobs' statuses in as few reads as DynamoDB allows (100 keys a call), by job
        id."""
        return {
            job_id: item["status"] for job_id, item in self.records(job_ids, ("status",)).items()
        }

    def records(self, job_ids: list[str], attributes: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        """Several jobs' records, only `attributes` of each (and job_id), by job id: whole records
        would be read, and paid for, at every poll. 100 keys a call; a missing job is left out."""
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        try:
            items = batch_get_all(
                self._table,
                [{"job_id": job_id} for job_id in job_ids],
                ProjectionExpression=", ".join(["job_id", *names]),
                ExpressionAttributeNames=names,
            )
        except ClientError as exc:
            raise JobStoreError(f"could not read {len(job_ids)} jobs", exc) from exc
        return {item["job_id"]: item for item in items}

    def claim_upload(self, job_id: str, stale_after_seconds: int) -> dict[str, Any] | None:
        """Mark the job's upload as being handled; None when another event already claimed it.

        Express workflows do not deduplicate by execution name and S3 may deliver an event twice,
        so the event handler claims the job before starting a workflow. A claim older than
        `stale_after_seconds` can be taken again: the handler that made it died before starting
        the workflow (a live one releases its claim when StartExecution fails).
        """
        now = self._clock()
        try:
            response = self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET upload_claimed_epoch = :now",
                # The job must exist (an unknown id is somebody else's object, not a job) and
                # still wait for its upload (a queued or finished job is not started twice), and
                # no live handler may hold the claim.
                ConditionExpression=(
                    "attribute_exists(job_id) AND #status = :awaiting AND "
                    "(attribute_not_exists(upload_claimed_epoch) OR upload_claimed_epoch < :stale)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":now": int(now),
                    ":awaiting": JobStatus.AWAITING_UPLOAD.value,
                    ":stale": int(now) - stale_after_seconds,
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return None
            raise JobStoreError(f"could not claim the upload of job {job_id}", exc) from exc
        return response["Attributes"]

    def release_claim(self, job_id: str) -> None:
        """Let the next delivery of the same event try again, after StartExecution failed."""
        try:
            self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="REMOVE upload_claimed_epoch",
                # Only a job still waiting for its upload: a workflow that did start owns it now.
                ConditionExpression="#status = :awaiting",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":awaiting": JobStatus.AWAITING_UPLOAD.value},
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise JobStoreError(f"could not release the claim on job {job_id}", exc) from exc

    def fail(self, job_id: str, error: str, cause: str) -> bool:
        """Record why a job cannot be done; False when it had already moved past QUEUED."""
        try:
            self._table.update_item(
                **RECORD_FAILED_UNTAKEN.request(
                    job_id, error=error, cause=cause, now=utc_now_iso(self._clock)
                )
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise JobStoreError(f"could not record job {job_id} as failed", exc) from exc
        return True
