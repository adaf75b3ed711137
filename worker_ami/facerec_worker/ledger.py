"""The worker's side of the jobs table: take a job, then record it DONE or FAILED, exactly once.

Every status write is one of the contract's conditional transitions, so a message delivered twice,
or two workers holding the same job after a visibility timeout, still end in one outcome. An
enrollment's face is added once per job too: a compaction folds only finished jobs' changes
(`finished_before`); its photo count is once per job on the person's record (people.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.contract import (
    CLAIM,
    RECORD_DONE,
    RECORD_FAILED,
    TERMINAL_STATUSES,
    Clock,
    Transition,
    batch_get_all,
    is_conditional_failure,
    utc_now_iso,
)

from .metrics import MetricsPublisher

logger = logging.getLogger(__name__)

# What of a DONE job's summary its log line carries: counts. The summary's names (a recognition's
# identities, an enrollment's person) stay in the record, which deleting the person redacts;
# a log line cannot be redacted (issue 19).
_LOGGED_COUNTS = ("faces", "dropped_faces")


# Set on a job's record while its photo is in the engine alone (JobLedger.alone_in_engine): found
# on the next claim, it means the last holder died with that photo and no other in its engine.
_ALONE_IN_ENGINE = "alone_in_engine_epoch"


class Claim(Enum):
    TAKEN = "taken"  # this worker now owns the job
    FINISHED = "finished"  # DONE or FAILED already: nothing to do but drop the message
    BUSY = "busy"  # another live worker holds it: leave the message alone
    # This worker now owns the job, whose photo ended the last holder's process when it was in
    # the engine alone: it is not run again (processor.py fails it).
    CRASHED_ALONE = "crashed_alone"


class JobLedger:
    """It calls DynamoDB through the table resource's client (`table.meta.client`), which takes
    and returns plain Python values as the resource does but, being a client, is thread-safe:
    a batch's jobs are claimed and recorded side by side. An outcome's metrics are put here, where
    the conditional write says it happened exactly once."""

    def __init__(
        self, table: Any, worker_id: str, *, metrics: MetricsPublisher, clock: Clock = time.time
    ) -> None:
        self._table = table
        self._client = table.meta.client
        self._table_name = table.name
        self._worker_id = worker_id
        self._metrics = metrics
        self._clock = clock

    def _apply(self, transition: Transition, job_id: str, **values: Any) -> dict[str, Any] | None:
        """The record as it was before (for what the transition does not write); None when the
        job was not in the state the transition needs."""
        request = transition.request(
            job_id, worker=self._worker_id, now=utc_now_iso(self._clock), **values
        )
        try:
            answer = self._client.update_item(
                TableName=self._table_name, ReturnValues="ALL_OLD", **request
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return None
            raise
        return answer.get("Attributes", {})

    def claim(
        self, job_id: str, *, message_id: str, receive_count: int, stale_after_seconds: float
    ) -> Claim:
        """Move QUEUED to PROCESSING under this worker's name, noting the message it came in.

        A PROCESSING claim is taken over when the same message comes back, so a job held by a
        dead worker is rescued on its first redelivery, or when it is older than
        `stale_after_seconds` (contract.job_transitions.CLAIM says why).
        """
        epoch = self._clock()
        before = self._apply(
            CLAIM,
            job_id,
            epoch=int(epoch),
            stale=int(epoch - stale_after_seconds),
            message=message_id,
            receive=receive_count,
        )
        if before is not None:
            return Claim.CRASHED_ALONE if _ALONE_IN_ENGINE in before else Claim.TAKEN
        item = self._client.get_item(
            TableName=self._table_name, Key={"job_id": job_id}, ConsistentRead=True
        ).get("Item")
        return Claim.FINISHED if not item or item["status"] in TERMINAL_STATUSES else Claim.BUSY

    @contextmanager
    def alone_in_engine(self, job_id: str) -> Iterator[None]:
        """Marks the job's record while its photo is in the engine with no other: a process that
        dies inside leaves the mark for the next claim to find (Claim.CRASHED_ALONE). One write
        before and one after, for redelivered photos only (processor.py)."""
        self._mark(job_id, f"SET {_ALONE_IN_ENGINE} = :epoch", {":epoch": int(self._clock())})
        try:
            yield
        finally:
            # An exception is the engine's answer, not the process's end: the mark goes.
            self._mark(job_id, f"REMOVE {_ALONE_IN_ENGINE}")

    def _mark(self, job_id: str, update: str, values: dict[str, Any] | None = None) -> None:
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={"job_id": job_id},
                UpdateExpression=update,
                # A record deleted meanwhile (its person erased) is not written back as a stub.
                ConditionExpression="attribute_exists(job_id)",
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise

    def done(
        self,
        job_id: str,
        *,
        result_key: str,
        summary: dict[str, Any],
        uploaded_at: datetime | None = None,
    ) -> bool:
        """False when the job was not ours to finish (someone else finished it first).
        `uploaded_at`, the photo's S3 LastModified, times the job from upload to result."""
        if self._apply(RECORD_DONE, job_id, result_key=result_key, summary=summary) is None:
            return False
        self._metrics.job_done(self._clock() - uploaded_at.timestamp() if uploaded_at else None)
        counts = {name: value for name, value in summary.items() if name in _LOGGED_COUNTS}
        logger.info("job %s done", job_id, extra={"job_id": job_id, **counts})
        return True

    def failed(self, job_id: str, *, error: str, cause: str) -> bool:
        """FAILED with `error` (a code the API turns into a sentence for the client) and `cause`
        (the particulars: kept in the record and the log for operators, never shown to clients)."""
        logger.warning(
            "job %s failed: %s: %s", job_id, error, cause, extra={"job_id": job_id, "error": error}
        )
        if self._apply(RECORD_FAILED, job_id, error=error, cause=cause) is None:
            return False
        self._metrics.job_failed(error)
        return True

    def finished_before(self, job_ids: Collection[str], cutoff: datetime) -> set[str]:
        """The jobs among `job_ids` recorded DONE or FAILED before `cutoff`, or whose record is
        gone (deleted with its person, or expired): jobs no run will write for again.

        A compaction folds only such jobs' gallery changes. A job writes all its changes before it
        finishes, so one finished before the compaction's cut has every change stamped before it,
        and all of them listed: they are folded together, as one face. A job still running may
        write its change again (its worker died before DONE), and only the changes, which carry
        the job id, can tell that face from a new one. Consistent reads, 100 jobs a call.
        """
        keys = [{"job_id": job_id} for job_id in sorted(set(job_ids))]
        items = batch_get_all(
            self._table,
            keys,
            ProjectionExpression="job_id, #status, finished_at",
            ExpressionAttributeNames={"#status": "status"},
        )
        running = {
            item["job_id"]
            for item in items
            if item["status"] not in TERMINAL_STATUSES
            or datetime.fromisoformat(item["finished_at"]) >= cutoff
        }
        return set(job_ids) - running
