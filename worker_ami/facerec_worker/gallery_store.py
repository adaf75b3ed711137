"""The shared gallery in S3: read by every worker, changed with compare-and-swap.

Enrollment is read-modify-write of one object. Two workers enrolling at once would lose one
update with a plain PUT, so each write is conditional on the ETag that was read (S3's If-Match,
or If-None-Match for the first gallery) and retried on a fresh copy when someone else won.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.contract import error_code, gallery_key, is_missing
from facerec_worker.engine import Gallery

logger = logging.getLogger(__name__)

MAX_WRITE_ATTEMPTS = 8
# S3's answers to a conditional PUT that another writer beat: the ETag moved, or a write in flight.
_LOST_RACE = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


class GalleryConflictError(Exception):
    """Other workers kept changing the gallery; the enrollment is retried with its message."""


class GalleryStore:
    def __init__(self, s3: Any, bucket: str, new_gallery: Callable[[], Gallery]) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._new_gallery = new_gallery
        self._key = gallery_key(new_gallery().model)
        self._gallery: Gallery | None = None
        self._etag: str | None = None

    def current(self) -> Gallery:
        """The latest gallery: a HEAD per call, a download only when another worker changed it."""
        etag = self._remote_etag()
        if self._gallery is None or etag != self._etag:
            self._gallery, self._etag = self._download()
            logger.info("gallery %s: %d people (revision %d)", self._key, len(self._gallery.people), self._gallery.revision)
        return self._gallery

    def update(self, change: Callable[[Gallery], None]) -> Gallery:
        """Apply `change` to the latest gallery and store it, retrying when another writer won."""
        for _ in range(MAX_WRITE_ATTEMPTS):
            gallery, etag = self._download()
            change(gallery)
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                response = self._s3.put_object(
                    Bucket=self._bucket, Key=self._key, Body=gallery.to_bytes(),
                    ContentType="application/json", **condition,
                )
            except ClientError as exc:
                if error_code(exc) in _LOST_RACE:
                    logger.info("gallery %s changed under us; retrying", self._key)
                    continue
                raise
            self._gallery, self._etag = gallery, response["ETag"]
            return gallery
        raise GalleryConflictError(f"{self._key} changed {MAX_WRITE_ATTEMPTS} times during one update")

    def _remote_etag(self) -> str | None:
        try:
            return self._s3.head_object(Bucket=self._bucket, Key=self._key)["ETag"]
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise

    def _download(self) -> tuple[Gallery, str | None]:
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=self._key)
        except ClientError as exc:
            if is_missing(exc):
                return self._new_gallery(), None
            raise
        return Gallery.from_bytes(response["Body"].read()), response["ETag"]
