"""What a client is told about a failed job: the job's error code and one fixed sentence for it.

The jobs table keeps the detailed cause (exception text, S3 paths, Step Functions' `Cause`) for
operators, and the worker logs it; none of that reaches `GET /jobs/{id}`. Codes a client does not
know yet still get a sentence that says what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["FAILURE_MESSAGES", "client_failure"]

FAILURE_MESSAGES: Mapping[str, str] = MappingProxyType(
    {
        # The photo itself (the engine's photo loader, and the worker's checks where it reads it).
        "empty_photo": "The photo is empty (0 bytes): upload the file again.",
        "not_an_image": "The upload is not an image: send a JPEG, PNG or WebP photo.",
        "unsupported_format": (
            "The photo's format is not supported: send a JPEG, PNG or WebP photo."
        ),
        "truncated_photo": "The photo is cut short or damaged: upload the whole file again.",
        "photo_too_large": (
            "The photo has more pixels than the service decodes: send a smaller version of it."
        ),
        "photo_too_small": "The photo is too small to find a face in: send a larger photo.",
        "upload_too_large": "The upload is larger than the service accepts: send a smaller file.",
        "wrong_content_type": (
            "The upload's content type is not the image type its job was created for: create the "
            "job with the photo's type."
        ),
        "upload_expired": (
            "The photo arrived after its upload slot expired: create a new job and upload the "
            "photo straight away."
        ),
        "photo_missing": (
            "The photo was not found (its upload may have expired): create a new job and upload it "
            "again."
        ),
        # Enrolling.
        "enrollment_rejected": (
            "An enrollment photo must show exactly one face, the person's: send another photo of "
            "them."
        ),
        "person_not_found": (
            "The person was deleted before this photo was enrolled: create them again (POST "
            "/people), then enroll the photo."
        ),
        # The service's own trouble: the operator has the details under the job id.
        "engine_error": (
            "The recognition engine failed on this photo: try another photo, or give the operator "
            "the job id."
        ),
        "photo_crashed_worker": (
            "The photo stopped the recognition engine each time it was tried: send it re-encoded "
            "or another photo, or give the operator the job id."
        ),
        "gallery_error": (
            "The gallery could not be updated: try again later, or give the operator the job id."
        ),
        "gallery_model_mismatch": (
            "The gallery was made by another model: the operator must rebuild it; give them the "
            "job id."
        ),
        "worker_error": (
            "The job could not be processed after several attempts: upload the photo again later."
        ),
    }
)
_JOB_FAILED = "job_failed"
_UNKNOWN = (
    "The job could not be completed: upload the photo again, or give the operator the job id."
)


def client_failure(code: str | None) -> dict[str, str]:
    """`{"error": code, "message": sentence}` for a failed job; codes outside the catalogue
    (Step Functions' `States.*`, an AWS error name) become `job_failed`."""
    if code is not None and code in FAILURE_MESSAGES:
        return {"error": code, "message": FAILURE_MESSAGES[code]}
    return {"error": _JOB_FAILED, "message": _UNKNOWN}
