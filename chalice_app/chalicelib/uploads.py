"""Upload slots: what a client may upload (name, type, size), the presigned POST, and the re-check.

S3 enforces a presigned POST's policy on AWS; moto does not, and an object can reach the bucket in
other ways, so the event handler checks the object again with `check_uploaded_object`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from botocore.exceptions import ClientError

from .config import Settings
from .contract import UPLOAD_TOO_LARGE, upload_size_problem
from .exceptions import BadRequestError, StorageError

__all__ = [
    "PresignedUpload",
    "Refusal",
    "UploadRequest",
    "UploadSigner",
    "check_uploaded_object",
    "photo_requests",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_FILENAME = 100
# The stem of a photo sent without a name, or with one in another script that keeps no character.
_FALLBACK_STEM = "photo"


def _safe_filename(raw: Any) -> str:
    """The last path segment of the client's name, in characters that need no escaping in a key or
    URL. A stem written in another script keeps none of them and becomes `photo`, with the
    extension kept (`写真.jpg` is `photo.jpg`, not `jpg`); a name that is only a path is refused."""
    if raw is None:
        return _FALLBACK_STEM
    if not isinstance(raw, str):
        raise BadRequestError("filename must be a string")
    name = PurePosixPath(raw.replace("\\", "/")).name
    if not name.strip("."):
        raise BadRequestError(f"filename {raw!r} has no usable characters")
    path = PurePosixPath(name)
    stem = _UNSAFE.sub("_", path.stem).strip("._") or _FALLBACK_STEM
    return (stem + _UNSAFE.sub("", path.suffix).rstrip("."))[:_MAX_FILENAME]


@dataclass(frozen=True)
class UploadRequest:
    """A client's validated request for an upload slot."""

    filename: str
    content_type: str

    @classmethod
    def from_body(cls, body: Any, settings: Settings) -> UploadRequest:
        """Validate a JSON body {"filename": ..., "content_type": ...}; BadRequestError says what is
        wrong."""
        if body is None:
            body = {}
        if not isinstance(body, Mapping):
            raise BadRequestError("the request body must be a JSON object")
        unknown = sorted(set(body) - {"filename", "content_type"})
        if unknown:
            raise BadRequestError(f"unknown fields: {', '.join(unknown)}")
        content_type = body.get("content_type", "image/jpeg")
        if content_type not in settings.allowed_content_types:
            raise BadRequestError(
                f"content_type {content_type!r} is not accepted; use one of "
                f"{', '.join(settings.allowed_content_types)}"
            )
        return cls(filename=_safe_filename(body.get("filename")), content_type=content_type)


def photo_requests(body: Any, settings: Settings) -> list[UploadRequest]:
    """`{"photos": [{"filename", "content_type"}, ...]}` with 1 to max_photos_per_request photos."""
    limit = settings.max_photos_per_request
    photos = body.get("photos") if isinstance(body, Mapping) and set(body) == {"photos"} else None
    if not isinstance(photos, list) or not 0 < len(photos) <= limit:
        raise BadRequestError(
            'send {"photos": [{"filename": ..., "content_type": ...}, ...]} '
            f"with 1 to {limit} photos"
        )
    return [UploadRequest.from_body(photo, settings) for photo in photos]


@dataclass(frozen=True)
class PresignedUpload:
    url: str
    fields: dict[str, str]
    expires_in_seconds: int
    max_bytes: int

    def to_body(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "fields": self.fields,
            "method": "POST",
            "expires_in_seconds": self.expires_in_seconds,
            "max_bytes": self.max_bytes,
        }


class UploadSigner:
    """Presigned POSTs into the input bucket; a browser posts the fields plus `file`, as they
    are."""

    def __init__(self, s3_client: Any, settings: Settings) -> None:
        self._s3 = s3_client
        self._settings = settings

    def presign(self, key: str, content_type: str) -> PresignedUpload:
        expires = self._settings.upload_expiry_seconds
        try:
            post = self._s3.generate_presigned_post(
                Bucket=self._settings.input_bucket,
                Key=key,
                Fields={"Content-Type": content_type},
                Conditions=[
                    {"Content-Type": content_type},
                    ["content-length-range", 1, self._settings.max_upload_bytes],
                ],
                ExpiresIn=expires,
            )
        except ClientError as exc:
            raise StorageError(f"could not presign an upload for {key}", exc) from exc
        return PresignedUpload(
            post["url"], post["fields"], expires, self._settings.max_upload_bytes
        )

    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Upload on the client's behalf (the seed's `POST /` sends the photo to the API)."""
        try:
            self._s3.put_object(
                Bucket=self._settings.input_bucket, Key=key, Body=body, ContentType=content_type
            )
        except ClientError as exc:
            raise StorageError(f"could not store {key}", exc) from exc


@dataclass(frozen=True)
class Refusal:
    """Why an uploaded object is refused: a code the client is shown (chalicelib.failures) and
    the particulars, kept in the job record for operators."""

    code: str
    cause: str


def check_uploaded_object(
    *,
    size: int,
    content_type: str,
    uploaded_epoch: float,
    job: Mapping[str, Any],
    settings: Settings,
) -> Refusal | None:
    """Why an uploaded object is refused (None when it is acceptable): empty, too large, wrong type,
    late."""
    if size <= 0:
        return Refusal("empty_photo", "the photo is empty")
    too_large = upload_size_problem(size, settings.max_upload_bytes)
    if too_large:
        return Refusal(UPLOAD_TOO_LARGE, too_large)
    if content_type not in settings.allowed_content_types:
        return Refusal(
            "wrong_content_type", f"content type {content_type!r} is not an accepted image type"
        )
    if content_type != job.get("content_type"):
        return Refusal(
            "wrong_content_type",
            f"content type {content_type!r} differs from the {job.get('content_type')!r} requested",
        )
    if uploaded_epoch > int(job["upload_expires_epoch"]):
        return Refusal("upload_expired", "the photo arrived after its upload slot expired")
    return None
