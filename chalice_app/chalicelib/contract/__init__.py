"""What the control plane and the workers share, and all the worker takes from chalicelib.

It lives in chalicelib because `chalice deploy` ships only app.py and chalicelib/; the worker
installs this package alone (tests/test_contract.py holds it to that), so there is exactly one
copy of every name below:

- `schema`: job statuses and kinds, the job id, the SQS job message, the upload limit
- `keys`: the S3 key layout
- `transitions`: the jobs table's conditional status changes
- `naming`: the stage's resource names and the workers' tags
- `settings`: settings read from the environment, and the ones both sides share
- `clock`, `aws`: time as records hold it; AWS error codes and scans
"""

from __future__ import annotations

from .aws import (
    THROTTLED,
    ObjectsNotDeletedError,
    batch_get_all,
    delete_objects,
    error_code,
    is_conditional_failure,
    is_missing,
    is_missing_object,
    queue_backlog,
    scan_all,
    scan_pages,
)
from .clock import Clock, utc_now_iso
from .job_transitions import (
    CLAIM,
    RECORD_DONE,
    RECORD_FAILED,
    RECORD_FAILED_UNTAKEN,
    RECORD_QUEUED,
    REQUEUE,
    Transition,
)
from .keys import (
    BATCH_UPLOAD_PREFIX,
    GALLERY_CHANGES,
    GALLERY_MANIFEST,
    GALLERY_PREFIX,
    MANIFEST_PENDING,
    RESULT_PREFIX,
    UPLOAD_PREFIX,
    GalleryKeys,
    batch_result_key,
    batch_upload_key,
    batch_upload_prefix,
    legacy_gallery_key,
    manifest_of_change,
    parse_upload_key,
    result_key,
    upload_key,
)
from .manifest import read_manifest
from .naming import DEFAULT_STAGE_PREFIX, STAGE_TAG, WORKER_ROLE_TAG, ResourceNames, stage_prefix
from .schema import (
    DEFAULT_MAX_UPLOAD_BYTES,
    ERASING,
    IDENTITIES,
    INCARNATION,
    JOB_ID_PATTERN,
    LEGACY_INCARNATION,
    RESULT_CONTENT_TYPE,
    SHARED_RESULTS,
    TERMINAL_STATUSES,
    UNCOUNTED_ENROLLMENTS,
    UPLOAD_TOO_LARGE,
    WORKER_GAVE_UP,
    JobKind,
    JobMessage,
    JobStatus,
    batch_job_id,
    is_job_id,
    upload_size_problem,
)
from .settings import EnvSettings, StageSettings, setting

__all__ = [
    "BATCH_UPLOAD_PREFIX",
    "CLAIM",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "DEFAULT_STAGE_PREFIX",
    "ERASING",
    "GALLERY_CHANGES",
    "GALLERY_MANIFEST",
    "GALLERY_PREFIX",
    "IDENTITIES",
    "INCARNATION",
    "JOB_ID_PATTERN",
    "LEGACY_INCARNATION",
    "MANIFEST_PENDING",
    "RECORD_DONE",
    "RECORD_FAILED",
    "RECORD_FAILED_UNTAKEN",
    "RECORD_QUEUED",
    "REQUEUE",
    "RESULT_CONTENT_TYPE",
    "RESULT_PREFIX",
    "SHARED_RESULTS",
    "STAGE_TAG",
    "TERMINAL_STATUSES",
    "THROTTLED",
    "UNCOUNTED_ENROLLMENTS",
    "UPLOAD_PREFIX",
    "UPLOAD_TOO_LARGE",
    "WORKER_GAVE_UP",
    "WORKER_ROLE_TAG",
    "Clock",
    "EnvSettings",
    "GalleryKeys",
    "JobKind",
    "JobMessage",
    "JobStatus",
    "ObjectsNotDeletedError",
    "ResourceNames",
    "StageSettings",
    "Transition",
    "batch_get_all",
    "batch_job_id",
    "batch_result_key",
    "batch_upload_key",
    "batch_upload_prefix",
    "delete_objects",
    "error_code",
    "is_conditional_failure",
    "is_job_id",
    "is_missing",
    "is_missing_object",
    "legacy_gallery_key",
    "manifest_of_change",
    "parse_upload_key",
    "queue_backlog",
    "read_manifest",
    "result_key",
    "scan_all",
    "scan_pages",
    "setting",
    "stage_prefix",
    "upload_key",
    "upload_size_problem",
    "utc_now_iso",
]
