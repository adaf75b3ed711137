"""The worker's side of the jobs table: take a job, then record it DONE or FAILED, exactly once.

Every write is conditional on the status the worker expects, so a message delivered twice, or
two workers holding the same job after a visibility timeout, still end in one outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.contract import JobStatus
from chalicelib.jobs import utc_now_iso

logger = logging.getLogger(__name__)


class Claim(Enum):
    TAKEN = "taken"  # this worker now owns the job
    FINISHED = "finished"  # DONE or FAILED already: nothing to do but drop the message
    BUSY = "busy"  # another live worker holds it: leave the message alone


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class JobLedger:
    """It calls DynamoDB through the table resource's client (`table.meta.client`), which takes
    and returns plain Python values as the resource does but, being a client, is thread-safe:
    a batch's jobs are claimed and recorded side by side."""

    def __init__(self, table: Any, worker_id: str, clock: Callable[[], float] = time.time) -> None:
        self._client = table.meta.client
        self._table_name = table.name
        self._worker_id = worker_id
        self._clock = clock

    def _update(self, job_id: str, *, values: dict[str, Any], **request: Any) -> None:
        self._client.update_item(
            TableName=self._table_name,
            Key={"job_id": job_id},
            ExpressionAttributeValues=values,
            **request,
        )

    def claim(self, job_id: str, *, message_id: str, receive_count: int, stale_after_seconds: float) -> Claim:
        """Move QUEUED to PROCESSING under this worker's name, noting the message it came in.

        A PROCESSING claim is taken over when the same message comes back: a live holder keeps
        its message invisible with the heartbeat, so a redelivery of that very message (a higher
        receive count) means the holder died, and the job is rescued on its first redelivery.
        A claim older than `stale_after_seconds` is taken over too: it covers a job enqueued
        twice, whose other message says nothing about this holder.
        """
        now = self._clock()
        try:
            self._update(
                job_id,
                UpdateExpression="SET #status = :processing, worker_id = :me, claimed_epoch = :now, "
                "started_at = :iso, claim_message = :message, claim_receive = :receive",
                # Queued jobs are free; a processing job only when its holder's message came back,
                # its claim went stale, or it is ours (our own redelivery after a visibility hiccup).
                ConditionExpression="#status = :queued OR (#status = :processing AND "
                "((claim_message = :message AND claim_receive < :receive) OR claimed_epoch < :stale "
                "OR worker_id = :me))",
                ExpressionAttributeNames={"#status": "status"},
                values={
                    ":processing": JobStatus.PROCESSING.value,
                    ":queued": JobStatus.QUEUED.value,
                    ":me": self._worker_id,
                    ":now": int(now),
                    ":stale": int(now - stale_after_seconds),
                    ":iso": utc_now_iso(self._clock),
                    ":message": message_id,
                    ":receive": receive_count,
                },
            )
            return Claim.TAKEN
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
        item = self._client.get_item(TableName=self._table_name, Key={"job_id": job_id}, ConsistentRead=True).get("Item")
        finished = {JobStatus.DONE.value, JobStatus.FAILED.value}
        return Claim.FINISHED if not item or item["status"] in finished else Claim.BUSY

    def done(self, job_id: str, *, result_key: str, summary: dict[str, Any]) -> bool:
        return self._finish(
            job_id,
            JobStatus.DONE,
            "result_key = :result, summary = :summary",
            {":result": result_key, ":summary": summary},
        )

    def failed(self, job_id: str, *, error: str, cause: str) -> bool:
        """FAILED with `error` (a code the API turns into a sentence for the client) and `cause`
        (the particulars: kept in the record and the log for operators, never shown to clients)."""
        logger.warning("job %s failed: %s: %s", job_id, error, cause)
        return self._finish(
            job_id, JobStatus.FAILED, "#error = :error, cause = :cause", {":error": error, ":cause": cause}
        )

    def _finish(self, job_id: str, status: JobStatus, update: str, values: dict[str, Any]) -> bool:
        """False when the job was not ours to finish (someone else finished it first)."""
        try:
            self._update(
                job_id,
                UpdateExpression=f"SET #status = :status, finished_at = :iso, {update}",
                # Only the worker holding the job records its outcome, and only once.
                ConditionExpression="#status = :processing AND worker_id = :me",
                ExpressionAttributeNames={"#status": "status", "#error": "error"} if "#error" in update
                else {"#status": "status"},
                values={
                    ":status": status.value,
                    ":processing": JobStatus.PROCESSING.value,
                    ":me": self._worker_id,
                    ":iso": utc_now_iso(self._clock),
                    **values,
                },
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True
