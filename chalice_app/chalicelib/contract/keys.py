"""The S3 key layout: where uploads, results and galleries live, each builder beside its parser."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .schema import JOB_ID_PATTERN

__all__ = [
    "BATCH_UPLOAD_PREFIX",
    "GALLERY_CHANGES",
    "GALLERY_MANIFEST",
    "GALLERY_PREFIX",
    "MANIFEST_PENDING",
    "RESULT_PREFIX",
    "UPLOAD_PREFIX",
    "GalleryKeys",
    "batch_result_key",
    "batch_upload_key",
    "batch_upload_prefix",
    "legacy_gallery_key",
    "manifest_of_change",
    "parse_upload_key",
    "result_key",
    "upload_key",
]

UPLOAD_PREFIX = "uploads/"
# A batch's photos: no S3 notification here (infra/template.yaml notifies for uploads/ only), so a
# batch costs no event per photo; `POST /batches/{id}/start` lists what arrived instead.
BATCH_UPLOAD_PREFIX = "batches/"
RESULT_PREFIX = "results/"
GALLERY_PREFIX = "gallery/"

# File names are whatever the client sent, minus path separators.
_UPLOAD_KEY = re.compile(rf"{UPLOAD_PREFIX}(?P<job_id>{JOB_ID_PATTERN})/(?P<filename>[^/]+)")


def upload_key(job_id: str, filename: str) -> str:
    """Where a job's photo is uploaded; the S3 event handler parses it back with
    parse_upload_key."""
    return f"{UPLOAD_PREFIX}{job_id}/{filename}"


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """(job_id, filename) for a key under uploads/, or None for any other object."""
    match = _UPLOAD_KEY.fullmatch(key)
    return (match["job_id"], match["filename"]) if match else None


def batch_upload_prefix(batch_id: str) -> str:
    """The folder of one batch's photos, which the start of the batch lists."""
    return f"{BATCH_UPLOAD_PREFIX}{batch_id}/"


def batch_upload_key(batch_id: str, index: int, filename: str) -> str:
    """Where photo `index` of a batch is uploaded; two photos of one name stay apart by index."""
    return f"{batch_upload_prefix(batch_id)}{index:02d}/{filename}"


def result_key(job_id: str) -> str:
    """Where the worker writes a job's result document in the output bucket."""
    return f"{RESULT_PREFIX}{job_id}.json"


def batch_result_key(unique: str) -> str:
    """Where a worker writes the results of the photos it recognized in one batch of messages:
    one S3 PUT for them all, not one each. Each job's DONE record names the object it is in."""
    return f"{RESULT_PREFIX}batches/{unique}.json"


def legacy_gallery_key(model: str) -> str:
    """Where the one-JSON-document gallery of before lived; a worker migrates it on first load."""
    return f"{GALLERY_PREFIX}{model}.json"


# The folder of a gallery's appended changes; the scheduled compaction looks for it under
# GALLERY_PREFIX.
GALLERY_CHANGES = "changes/"
# Changes and snapshots are engine.FaceIndex's binary form.
_BINARY = ".bin"
# Each gallery's manifest, and its list of the changes a compaction left as they were because
# their jobs had not finished (a retry may write the face again): the scheduled compaction does
# not count those as waiting.
GALLERY_MANIFEST = "manifest.json"
MANIFEST_PENDING = "pending"


def manifest_of_change(key: str) -> str | None:
    """The manifest of the gallery whose change object `key` is; None for any other key."""
    gallery, found, _ = key.partition(GALLERY_CHANGES)
    return f"{gallery}{GALLERY_MANIFEST}" if found and gallery.startswith(GALLERY_PREFIX) else None


@dataclass(frozen=True)
class GalleryKeys:
    """One gallery per embedding model and detector: vectors of one pair mean nothing to another.

    `manifest.json` names the current snapshot (only a compaction changes it); `changes/` holds
    one object per enrollment, under a key that sorts by the time it was written.
    """

    model: str
    detector: str

    @property
    def prefix(self) -> str:
        return f"{GALLERY_PREFIX}{self.model}-{self.detector}/"

    @property
    def manifest(self) -> str:
        return f"{self.prefix}{GALLERY_MANIFEST}"

    @property
    def changes(self) -> str:
        return f"{self.prefix}{GALLERY_CHANGES}"

    def change(self, stamp: str, unique: str) -> str:
        return f"{self.changes}{stamp}-{unique}{_BINARY}"

    def unique_of_change(self, key: str) -> str:
        """What `change` was given as `unique` (the enrollment's job id); a stamp holds no '-'."""
        return key[len(self.changes) :].partition("-")[2].removesuffix(_BINARY)

    def snapshot(self, stamp: str, unique: str) -> str:
        return f"{self.prefix}snapshots/{stamp}-{unique}{_BINARY}"
