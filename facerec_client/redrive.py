"""Dead-lettered messages back to the queues they came from: the boto3 side of `facerec redrive`.

A stage has two dead-letter queues (infra/template.yaml), and each needs something different:

- The jobs queue's holds jobs whose deliveries ran out. Their records say FAILED (the worker's
  last delivery gave up) or PROCESSING (the holder died first), and a worker drops the message of
  a FAILED job, so each record must wait again (contract.REQUEUE) before its message goes back.
  SQS's message move task moves messages without showing them to anyone: it cannot requeue the
  records, so these always go one batch at a time.
- The upload-events queue's holds S3 notifications the event handler failed on. Their jobs still
  wait for their uploads (a failing handler releases its claim, a dead one's claim goes stale), so
  the messages go back as they are: SQS's message move task does that, and where the endpoint has
  none (moto), the same batches as the jobs, without the records.

A batch is received, sent to the source queue, and only then deleted: a crash between the two
leaves a message in both queues, which a worker's claim makes harmless, never in neither.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.contract import (
    REQUEUE,
    WORKER_GAVE_UP,
    Clock,
    JobMessage,
    ResourceNames,
    error_code,
    is_conditional_failure,
    utc_now_iso,
)

__all__ = ["DeadLetterQueue", "Moved", "Redrive", "RedriveError", "stage_dead_letter_queues"]

logger = logging.getLogger(__name__)

# SQS's answers when it has no move task for this queue or action; moto answers an action it lacks
# with an HTTP 500 page, no AWS error document, which botocore reports as the bare status code.
_NO_MOVE_TASK = frozenset(
    {"UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "InvalidAction"}
)
# Long enough to requeue, send and delete a batch; a message left behind comes back after it.
_RECEIVE_VISIBILITY_SECONDS = 60
# A receive that long-polls asks every SQS server, so an empty answer means the queue is empty.
_RECEIVE_WAIT_SECONDS = 1
_MOVE_TASK_POLL_SECONDS = 2.0


class RedriveError(Exception):
    """SQS or DynamoDB refused a step; the message says which, and nothing was lost."""


@dataclass(frozen=True)
class DeadLetterQueue:
    """A dead-letter queue, the queue its messages came from, and whether they are jobs."""

    name: str
    url: str
    source_url: str
    holds_jobs: bool


@dataclass(frozen=True)
class Moved:
    """What one queue's redrive did (or, in a dry run, would do)."""

    queue: DeadLetterQueue
    messages: int
    requeued: int = 0
    left: int = 0
    how: str = ""


def stage_dead_letter_queues(sqs: Any, prefix: str) -> list[DeadLetterQueue]:
    """The stage's two dead-letter queues, found by the names infra/template.yaml gives them."""
    names = ResourceNames(prefix)
    pairs = [
        (names.jobs_dead_letter_queue, names.jobs_queue, True),
        (names.upload_events_dead_letter_queue, names.upload_events_queue, False),
    ]
    try:
        return [
            DeadLetterQueue(dead, _queue_url(sqs, dead), _queue_url(sqs, source), holds_jobs)
            for dead, source, holds_jobs in pairs
        ]
    except ClientError as exc:
        raise RedriveError(
            f"the stage {prefix!r} has no such queue ({error_code(exc)}): {exc}"
        ) from exc


def _queue_url(sqs: Any, name: str) -> str:
    return sqs.get_queue_url(QueueName=name)["QueueUrl"]


class Redrive:
    def __init__(
        self,
        sqs: Any,
        jobs_table: Any,
        clock: Clock = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sqs = sqs
        self._jobs = jobs_table
        self._clock = clock
        self._sleep = sleep

    def count(self, queue: DeadLetterQueue) -> Moved:
        """How many messages the queue holds now, without touching them (a receive would hide them
        and count a delivery): SQS's approximate number, exact on a queue nothing is writing to."""
        attributes = self._call(
            "count the messages in",
            queue,
            lambda: self._sqs.get_queue_attributes(
                QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessages"]
            ),
        )["Attributes"]
        return Moved(queue, int(attributes["ApproximateNumberOfMessages"]), how="dry run")

    def move(self, queue: DeadLetterQueue) -> Moved:
        """Every message of the queue back to its source; the jobs' records requeued first."""
        if queue.holds_jobs:
            return self._move_batches(queue, self._requeue_jobs)
        moved = self._move_task(queue)
        if moved is not None:
            return Moved(queue, moved, how="SQS message move task")
        return self._move_batches(queue, lambda batch: (batch, 0))

    def _move_task(self, queue: DeadLetterQueue) -> int | None:
        """The messages SQS's move task moved back; None where the endpoint has no move task."""
        arn = self._call(
            "read the ARN of",
            queue,
            lambda: self._sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["QueueArn"]),
        )["Attributes"]["QueueArn"]
        try:
            self._sqs.start_message_move_task(SourceArn=arn)
        except ClientError as exc:
            code = error_code(exc)
            if code not in _NO_MOVE_TASK and not code.isdigit():
                raise RedriveError(
                    f"could not start a message move task on {queue.name}: {exc}"
                ) from exc
            logger.info(
                "%s: no message move task here (%s); moving its messages one batch at a time",
                queue.name,
                code,
            )
            return None
        while True:
            # The newest task comes first; only a running one still names its handle.
            (task, *_) = self._call(
                "follow the move task of",
                queue,
                lambda: self._sqs.list_message_move_tasks(SourceArn=arn, MaxResults=1),
            )["Results"]
            if task["Status"] != "RUNNING":
                break
            self._sleep(_MOVE_TASK_POLL_SECONDS)
        if task["Status"] != "COMPLETED":
            raise RedriveError(
                f"the message move task on {queue.name} ended {task['Status']}: "
                f"{task.get('FailureReason', 'no reason given')}"
                f" ({task.get('ApproximateNumberOfMessagesMoved', 0)} moved); "
                "run facerec redrive again"
            )
        return int(task["ApproximateNumberOfMessagesMoved"])

    def _move_batches(
        self,
        queue: DeadLetterQueue,
        prepare: Callable[[list[dict[str, Any]]], tuple[list[dict[str, Any]], int]],
    ) -> Moved:
        """Receive, `prepare` (which picks the messages to move and counts the records it
        requeued), send, then delete, ten at a time until the queue is empty."""
        moved = requeued = 0
        left: list[dict[str, Any]] = []
        while batch := self._receive(queue):
            chosen, records = prepare(batch)
            requeued += records
            left += [m for m in batch if m not in chosen]
            sent = self._send(queue, chosen)
            self._delete(queue, sent)
            moved += len(sent)
        # Hidden until the loop ended, so that it saw each once; now back in view for a person.
        for start in range(0, len(left), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(left[start : start + 10])
            ]
            self._call(
                "show the messages left in",
                queue,
                partial(
                    self._sqs.change_message_visibility_batch, QueueUrl=queue.url, Entries=entries
                ),
            )
        return Moved(queue, moved, requeued=requeued, left=len(left), how="receive, send, delete")

    def _receive(self, queue: DeadLetterQueue) -> list[dict[str, Any]]:
        return self._call(
            "receive from",
            queue,
            lambda: self._sqs.receive_message(
                QueueUrl=queue.url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=_RECEIVE_WAIT_SECONDS,
                VisibilityTimeout=_RECEIVE_VISIBILITY_SECONDS,
                MessageAttributeNames=["All"],
            ),
        ).get("Messages", [])

    def _send(self, queue: DeadLetterQueue, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages the source queue took; one it refused stays in the dead-letter queue."""
        if not messages:
            return []
        entries = [
            {
                "Id": str(i),
                "MessageBody": m["Body"],
                **(
                    {"MessageAttributes": m["MessageAttributes"]}
                    if m.get("MessageAttributes")
                    else {}
                ),
            }
            for i, m in enumerate(messages)
        ]
        answer = self._call(
            "send the messages of",
            queue,
            lambda: self._sqs.send_message_batch(QueueUrl=queue.source_url, Entries=entries),
        )
        for failure in answer.get("Failed", []):
            logger.warning(
                "%s: message %s not sent back: %s",
                queue.name,
                messages[int(failure["Id"])]["MessageId"],
                failure.get("Message"),
            )
        return [messages[int(entry["Id"])] for entry in answer.get("Successful", [])]

    def _delete(self, queue: DeadLetterQueue, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        answer = self._call(
            "delete from",
            queue,
            lambda: self._sqs.delete_message_batch(QueueUrl=queue.url, Entries=entries),
        )
        for failure in answer.get("Failed", []):
            # Sent already: the next redrive sends it again, and a worker's claim drops the repeat.
            logger.warning(
                "%s: message %s sent back but not deleted: %s",
                queue.name,
                messages[int(failure["Id"])]["MessageId"],
                failure.get("Message"),
            )

    def _requeue_jobs(self, batch: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """The messages that are jobs, each job's record requeued where REQUEUE allows; a body
        that is not a job stays in the dead-letter queue for someone to read."""
        jobs, requeued = [], 0
        for message in batch:
            try:
                job = JobMessage.from_json(message["Body"])
            except (ValueError, KeyError, TypeError):
                logger.warning(
                    "message %s is not a job; left in the dead-letter queue: %.200r",
                    message["MessageId"],
                    message["Body"],
                )
                continue
            jobs.append(message)
            requeued += self._requeue(job.job_id)
        return jobs, requeued

    def _requeue(self, job_id: str) -> bool:
        """False when the job has an answer of its own (DONE, or a failure no retry mends), or its
        record expired: its message goes back all the same, and a worker drops it."""
        request = REQUEUE.request(job_id, now=utc_now_iso(self._clock), gave_up=WORKER_GAVE_UP)
        try:
            self._jobs.update_item(**request)
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise RedriveError(f"could not requeue job {job_id}: {exc}") from exc
        logger.info("job %s requeued", job_id)
        return True

    @staticmethod
    def _call(what: str, queue: DeadLetterQueue, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except ClientError as exc:
            raise RedriveError(f"could not {what} {queue.name}: {exc}") from exc
