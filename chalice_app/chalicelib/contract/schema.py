"""What a job is: its statuses and kinds, the id's shape, the message a worker takes, the upload
rule."""

from __future__ import annotations

import enum
import json
import re
from dataclasses import asdict, dataclass

__all__ = [
    "DEFAULT_MAX_UPLOAD_BYTES",
    "ERASING",
    "IDENTITIES",
    "INCARNATION",
    "JOB_ID_PATTERN",
    "LEGACY_INCARNATION",
    "RESULT_CONTENT_TYPE",
    "SHARED_RESULTS",
    "TERMINAL_STATUSES",
    "UPLOAD_TOO_LARGE",
    "WORKER_GAVE_UP",
    "JobKind",
    "JobMessage",
    "JobStatus",
    "batch_job_id",
    "is_job_id",
    "upload_size_problem",
]


class JobStatus(enum.StrEnum):
    """Where a job is. A job only moves forward; DONE and FAILED are final."""

    AWAITING_UPLOAD = "AWAITING_UPLOAD"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    DONE = "DONE"
    FAILED = "FAILED"


TERMINAL_STATUSES = frozenset({JobStatus.DONE, JobStatus.FAILED})


class JobKind(enum.StrEnum):
    """What a worker does: name the faces in a photo, add a photo's face to the gallery, or fold
    the gallery's changes into a new snapshot without the deleted (no photo). A BATCH record is
    no worker's: it holds a batch's photo names and moves through the workflow as a job does,
    while each of its photos is a RECOGNIZE job of its own."""

    RECOGNIZE = "recognize"
    ENROLL = "enroll"
    COMPACT = "compact"
    BATCH = "batch"


# The people row's attribute that is new at every POST /people and carried by each face enrolled
# under it: a face matches only while its person's row holds the same value, so a deleted and
# re-created id starts empty. Rows written before incarnations existed read as LEGACY_INCARNATION.
INCARNATION = "incarnation"
LEGACY_INCARNATION = "legacy"
# The people row's set of enrollment jobs whose photos are not counted yet: the API adds each job
# as it hands out the upload, and the worker's count takes it out in the same conditional write,
# so a job run again (its worker died before DONE, or an operator's redrive) counts once.
UNCOUNTED_ENROLLMENTS = "uncounted_enrollments"
# The people row's mark that the person is being erased (when it began): written first by
# DELETE /people, so that from then on no worker names, enrolls or keeps the person's faces, while
# the rest of them is removed; the row itself goes last, so a DELETE that failed half way can be
# asked again and finds what is left to remove.
ERASING = "erasing_since"


RESULT_CONTENT_TYPE = "application/json"
# In a DONE recognition's record, its summary's list of whom each face was (a person id, or None):
# what deleting a person finds the recognitions that named them by, and redacts.
IDENTITIES = "identities"
# In an object that holds several jobs' results (contract.keys.batch_result_key), the map from
# each job id to that job's document.
SHARED_RESULTS = "results"

# Job ids are URL-safe tokens (secrets.token_urlsafe).
JOB_ID_PATTERN = r"[A-Za-z0-9_-]{16,64}"
_JOB_ID = re.compile(JOB_ID_PATTERN)

# The largest upload, in bytes: the presigned POST's policy, and every place that reads the photo
# again (moto does not enforce the policy) refuses anything larger with the same code and sentence.
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
UPLOAD_TOO_LARGE = "upload_too_large"
# The error a worker records when a job's deliveries run out (its message then goes to the
# dead-letter queue); `facerec redrive` requeues jobs failed with it and no other.
WORKER_GAVE_UP = "worker_error"


def batch_job_id(batch_id: str, index: int) -> str:
    """The job id of photo `index` of a batch: the batch's id is the credential for all of them."""
    return f"{batch_id}-{index:02d}"


def is_job_id(value: str) -> bool:
    """True for a string shaped like a job id, so a malformed id is a 404 without a table read.
    Whole: `$` would let a trailing newline through."""
    return bool(_JOB_ID.fullmatch(value))


def upload_size_problem(size: int, limit: int) -> str | None:
    """Why an upload of `size` bytes is refused under `limit`, in the words every check uses; None
    when it fits. (The engine's `photo_too_large` is about pixels, not bytes.)"""
    return f"the photo is {size} bytes, over the {limit}-byte limit" if size > limit else None


@dataclass(frozen=True)
class JobMessage:
    """The SQS message body that the workflow enqueues and a worker consumes."""

    job_id: str
    kind: JobKind
    bucket: str
    key: str
    person: str | None = None

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "kind": self.kind.value}, sort_keys=True)

    @classmethod
    def from_json(cls, body: str) -> JobMessage:
        data = json.loads(body)
        return cls(
            job_id=data["job_id"],
            kind=JobKind(data["kind"]),
            bucket=data["bucket"],
            key=data["key"],
            person=data.get("person"),
        )
