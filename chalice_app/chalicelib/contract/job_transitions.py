"""The jobs table's status changes, written once for the API, the workflow and the workers.

Each is one conditional UpdateItem: the move, and the status the record must be in for it.

    AWAITING_UPLOAD ──RECORD_QUEUED──▶ QUEUED ──CLAIM──▶ PROCESSING ──RECORD_DONE───▶ DONE
          │                              │                    └──────RECORD_FAILED──▶ FAILED
          └─────RECORD_FAILED_UNTAKEN────┴──────────────────────────────────────────▶ FAILED

    PROCESSING, or FAILED because a worker gave up ──REQUEUE──▶ QUEUED   (an operator's redrive)

The workflow records QUEUED, and FAILED from its Catch; the upload-event handler (JobStore.fail)
fails a refused upload the same way; a worker claims, and records DONE or FAILED; `facerec
redrive` requeues the jobs whose messages it moves back from the dead-letter queue.

The workflow's ASL takes the expressions of the two transitions it writes from here
(statemachine.load_definition fills them in), and tests/test_workflow_definition.py holds its typed
status values to these.

Attribute names that DynamoDB reserves are written `#name` and always stand for `name`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .schema import JobStatus

__all__ = [
    "CLAIM",
    "RECORD_DONE",
    "RECORD_FAILED",
    "RECORD_FAILED_UNTAKEN",
    "RECORD_QUEUED",
    "REQUEUE",
    "Transition",
]

_VALUE = re.compile(r":\w+")
_NAME = re.compile(r"#\w+")


@dataclass(frozen=True)
class Transition:
    """A conditional UpdateItem on one job; `statuses` are the placeholders that stand for a status.

    `request(job_id, worker=..., now=...)` gives update_item's arguments for a table resource or
    its client (`table.meta.client`, which takes the same plain values, plus TableName): the
    statuses' values, and the caller's for every other placeholder, named without the colon.
    """

    update: str
    condition: str
    statuses: Mapping[str, JobStatus] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "statuses", MappingProxyType(dict(self.statuses)))

    @property
    def attribute_names(self) -> dict[str, str]:
        return {
            name: name[1:] for name in sorted(set(_NAME.findall(f"{self.update} {self.condition}")))
        }

    @property
    def parameters(self) -> frozenset[str]:
        """The placeholders the caller fills (without their colon): all but the statuses."""
        return frozenset(v[1:] for v in _VALUE.findall(f"{self.update} {self.condition}")) - {
            s[1:] for s in self.statuses
        }

    def request(self, job_id: str, **values: Any) -> dict[str, Any]:
        if set(values) != self.parameters:
            raise TypeError(
                f"{self.update!r} takes {sorted(self.parameters)}, not {sorted(values)}"
            )
        return {
            "Key": {"job_id": job_id},
            "UpdateExpression": self.update,
            "ConditionExpression": self.condition,
            "ExpressionAttributeNames": self.attribute_names,
            "ExpressionAttributeValues": {
                **{placeholder: status.value for placeholder, status in self.statuses.items()},
                **{f":{name}": value for name, value in values.items()},
            },
        }


# The workflow, once per execution. Only a job still waiting for its photo: a duplicate execution
# (Express delivers at least once) finds it queued already and stops without enqueuing it twice.
# `execution_id` is for an operator, not the service: the execution that queued the job, to find
# in Step Functions (or its log group) when a job did not go as expected.
RECORD_QUEUED = Transition(
    "SET #status = :queued, queued_at = :now, execution_id = :execution",
    "#status = :awaiting",
    {":queued": JobStatus.QUEUED, ":awaiting": JobStatus.AWAITING_UPLOAD},
)

# The workflow's Catch and the event handler: only a job nobody works on yet. A worker that took
# it (PROCESSING) owns its outcome, and DONE or FAILED are final.
RECORD_FAILED_UNTAKEN = Transition(
    "SET #status = :failed, #error = :error, cause = :cause, finished_at = :now",
    "#status IN (:awaiting, :queued)",
    {
        ":failed": JobStatus.FAILED,
        ":awaiting": JobStatus.AWAITING_UPLOAD,
        ":queued": JobStatus.QUEUED,
    },
)

# A worker takes the job, noting the message it came in. Queued jobs are free; a processing job
# only when its holder's message came back (a live holder keeps its message invisible, so a
# redelivery of that very message means the holder died), its claim went stale (a job enqueued
# twice, whose other message says nothing about the holder), or it is ours (our own redelivery).
CLAIM = Transition(
    "SET #status = :processing, worker_id = :worker, claimed_epoch = :epoch, "
    "started_at = :now, claim_message = :message, claim_receive = :receive",
    "#status = :queued OR (#status = :processing AND "
    "((claim_message = :message AND claim_receive < :receive) OR claimed_epoch < :stale "
    "OR worker_id = :worker))",
    {":processing": JobStatus.PROCESSING, ":queued": JobStatus.QUEUED},
)

# Only the worker holding the job records its outcome, and only once.
_HELD_BY_WORKER = "#status = :processing AND worker_id = :worker"

RECORD_DONE = Transition(
    "SET #status = :done, finished_at = :now, result_key = :result_key, summary = :summary",
    _HELD_BY_WORKER,
    {":done": JobStatus.DONE, ":processing": JobStatus.PROCESSING},
)

# `error` is a code the API turns into a sentence for the client (chalicelib.failures); `cause`
# holds the particulars, for operators, never shown to clients.
RECORD_FAILED = Transition(
    "SET #status = :failed, finished_at = :now, #error = :error, cause = :cause",
    _HELD_BY_WORKER,
    {":failed": JobStatus.FAILED, ":processing": JobStatus.PROCESSING},
)

# `facerec redrive`, for a job whose message it moves back from the dead-letter queue: the one
# move backwards, an operator's. The message got there because its deliveries ran out, so the job
# is FAILED with WORKER_GAVE_UP (the worker's last delivery recorded that) or still PROCESSING
# (its holder died before it could): either waits again, its claim dropped so that any worker may
# take the new message. Any other outcome is the job's own answer and stays.
REQUEUE = Transition(
    "SET #status = :queued, requeued_at = :now "
    "REMOVE #error, cause, finished_at, worker_id, claimed_epoch, claim_message, claim_receive",
    "#status = :processing OR (#status = :failed AND #error = :gave_up)",
    {":queued": JobStatus.QUEUED, ":processing": JobStatus.PROCESSING, ":failed": JobStatus.FAILED},
)
