"""The names the API, the workflow and the workers agree on: statuses, job kinds, keys, messages.

It lives in chalicelib because `chalice deploy` ships only app.py and chalicelib/; the worker
installs the same package, so there is exactly one copy of every name below.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import asdict, dataclass

__all__ = [
    "JOB_ID_PATTERN",
    "JobKind",
    "JobMessage",
    "JobStatus",
    "RESULT_CONTENT_TYPE",
    "STAGE_TAG",
    "TERMINAL_STATUSES",
    "UPLOAD_PREFIX",
    "WORKER_ROLE_TAG",
    "gallery_key",
    "is_job_id",
    "parse_upload_key",
    "result_key",
    "upload_key",
]


class JobStatus(str, enum.Enum):
    """Where a job is. A job only moves forward; DONE and FAILED are final."""

    AWAITING_UPLOAD = "AWAITING_UPLOAD"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    DONE = "DONE"
    FAILED = "FAILED"


TERMINAL_STATUSES = frozenset({JobStatus.DONE, JobStatus.FAILED})


class JobKind(str, enum.Enum):
    """What a worker does with the photo: name the faces in it, or add its face to the gallery."""

    RECOGNIZE = "recognize"
    ENROLL = "enroll"


UPLOAD_PREFIX = "uploads/"
RESULT_PREFIX = "results/"
GALLERY_PREFIX = "gallery/"
RESULT_CONTENT_TYPE = "application/json"

# Job ids are URL-safe tokens (secrets.token_urlsafe); file names are whatever the client sent,
# minus path separators.
JOB_ID_PATTERN = r"[A-Za-z0-9_-]{16,64}"
_JOB_ID = re.compile(rf"^{JOB_ID_PATTERN}$")
_UPLOAD_KEY = re.compile(rf"^uploads/(?P<job_id>{JOB_ID_PATTERN})/(?P<filename>[^/]+)$")

# Tags the launch template puts on every worker instance: the scale-up task counts live workers by
# them, so a worker launched by hand with the same tags counts too.
WORKER_ROLE_TAG = ("facerec:role", "worker")
STAGE_TAG = "facerec:stage"


def is_job_id(value: str) -> bool:
    """True for a string shaped like a job id, so a malformed id is a 404 without a table read."""
    return bool(_JOB_ID.match(value))


def upload_key(job_id: str, filename: str) -> str:
    """Where a job's photo is uploaded; the S3 event handler parses it back with parse_upload_key."""
    return f"{UPLOAD_PREFIX}{job_id}/{filename}"


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """(job_id, filename) for a key under uploads/, or None for any other object."""
    match = _UPLOAD_KEY.match(key)
    return (match["job_id"], match["filename"]) if match else None


def result_key(job_id: str) -> str:
    """Where the worker writes a job's result document in the output bucket."""
    return f"{RESULT_PREFIX}{job_id}.json"


def gallery_key(model: str) -> str:
    """One gallery per embedding model: a gallery made by one model is useless to another."""
    return f"{GALLERY_PREFIX}{model}.json"


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
