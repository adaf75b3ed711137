"""From "an object was created in the input bucket" to "one workflow execution for its job".

S3 notifies an SQS queue (infra/template.yaml), whose messages reach `UploadEventHandler`: on AWS
through the Lambda SQS event source, locally through local_service.lambda_stand_ins' pump. A queue
rather than a direct S3→Lambda trigger because it buffers bursts when StartExecution throttles (a
failed batch is delivered again) and because CloudFormation cannot attach a Lambda trigger to a
bucket that another template owns.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from .config import Settings
from .contract import JobKind, JobMessage, parse_upload_key
from .exceptions import StorageError
from .jobs import JobStore
from .telemetry import put_job_failed
from .uploads import Refusal, check_uploaded_object
from .workflow import WorkflowStarter

__all__ = ["UploadEventHandler", "UploadOutcome", "UploadedObject", "iter_uploaded_objects"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadedObject:
    bucket: str
    key: str


def iter_uploaded_objects(notification_body: str) -> Iterator[UploadedObject]:
    """The ObjectCreated records in one S3 notification (an SQS message body).

    S3 sends an `s3:TestEvent` when the notification is configured, and URL-encodes keys
    (a space arrives as `+`); both are handled here so the handler sees real keys only.
    """
    document = json.loads(notification_body)
    for record in document.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue
        s3 = record["s3"]
        yield UploadedObject(
            bucket=s3["bucket"]["name"],
            key=unquote_plus(s3["object"]["key"]),
        )


class UploadOutcome(enum.StrEnum):
    STARTED = "started"
    DUPLICATE = "duplicate"  # another event for this job was handled, or its execution exists
    IGNORED = "ignored"  # not a job upload: outside uploads/, or no such job
    REJECTED = "rejected"  # a job upload we refuse (size, type, late): the job is FAILED
    # an upload for a job with no record (deleted with its person): the object is deleted
    REMOVED = "removed"


class UploadEventHandler:
    """Claims the job, re-checks the object, starts the execution named after the job id."""

    def __init__(
        self, jobs: JobStore, s3_client: Any, starter: WorkflowStarter, settings: Settings
    ) -> None:
        self._jobs = jobs
        self._s3 = s3_client
        self._starter = starter
        self._settings = settings

    def handle(self, obj: UploadedObject) -> UploadOutcome:
        parsed = parse_upload_key(obj.key)
        if parsed is None or obj.bucket != self._settings.input_bucket:
            logger.info("ignoring s3://%s/%s: not a job upload", obj.bucket, obj.key)
            return UploadOutcome.IGNORED
        job_id, _ = parsed
        job = self._jobs.claim_upload(job_id, self._settings.upload_claim_stale_seconds)
        if job is None:
            return self._unclaimed(job_id, obj)
        try:
            return self._handle_claimed(job, obj)
        except Exception:
            # Let the next delivery of this event try again rather than wait for the claim to go
            # stale.
            self._jobs.release_claim(job_id)
            raise

    def _unclaimed(self, job_id: str, obj: UploadedObject) -> UploadOutcome:
        """An upload whose job could not be claimed: a repeated event, or a job with no record. A
        slot outlives its job's record only when the record was deleted with its person (records
        expire days after their 15-minute slots): the upload is theirs, and is removed (issue
        19)."""
        if self._jobs.get(job_id) is not None:
            logger.info("job %s: upload already handled", job_id)
            return UploadOutcome.DUPLICATE
        try:
            self._s3.delete_object(Bucket=obj.bucket, Key=obj.key)
        except ClientError as exc:
            raise StorageError(f"could not remove s3://{obj.bucket}/{obj.key}", exc) from exc
        logger.info("job %s: no such job (deleted with its person); upload removed", job_id)
        return UploadOutcome.REMOVED

    def _handle_claimed(self, job: dict[str, Any], obj: UploadedObject) -> UploadOutcome:
        job_id = job["job_id"]
        if job.get("upload_key") != obj.key:
            self._jobs.release_claim(job_id)
            logger.warning("job %s: %s is not the key its slot was issued for", job_id, obj.key)
            return UploadOutcome.IGNORED
        refusal = self._refusal(obj, job)
        if refusal is not None:
            logger.info("job %s: upload refused (%s): %s", job_id, refusal.code, refusal.cause)
            self._jobs.fail(job_id, refusal.code, refusal.cause)
            put_job_failed(refusal.code, self._settings.stage_prefix)
            return UploadOutcome.REJECTED
        started = self._starter.start(job_id, workflow_input(job, obj.bucket, obj.key))
        return UploadOutcome.STARTED if started else UploadOutcome.DUPLICATE

    def _refusal(self, obj: UploadedObject, job: dict[str, Any]) -> Refusal | None:
        try:
            head = self._s3.head_object(Bucket=obj.bucket, Key=obj.key)
        except ClientError as exc:
            raise StorageError(f"could not read s3://{obj.bucket}/{obj.key}", exc) from exc
        return check_uploaded_object(
            size=int(head["ContentLength"]),
            content_type=head.get("ContentType", ""),
            uploaded_epoch=head["LastModified"].timestamp(),
            job=job,
            settings=self._settings,
        )


def workflow_input(job: dict[str, Any], bucket: str, key: str) -> dict[str, Any]:
    """The execution's input: the job's fields and the SQS message body, serialised by the
    contract."""
    message = JobMessage(
        job_id=job["job_id"],
        kind=JobKind(job["kind"]),
        bucket=bucket,
        key=key,
        person=job.get("person"),
    )
    return {"job_id": message.job_id, "kind": message.kind.value, "message_body": message.to_json()}
