"""Taking a deleted person out of the recognitions that named them: results, photos, job records.

A worker writes one result object for a batch of photos (contract.keys.batch_result_key), which
holds other people's faces too: it is rewritten with the person's faces made unknown, never
deleted whole. The photo the person was recognized in is deleted (it shows them; its result
stays, as the photo's other faces' answer). The record's summary of identities goes last: it is
how a retried deletion finds what it has not finished.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .config import Settings
from .contract import (
    IDENTITIES,
    RESULT_CONTENT_TYPE,
    SHARED_RESULTS,
    ObjectsNotDeletedError,
    delete_objects,
    is_missing,
    result_key,
)
from .exceptions import StorageError
from .jobs import JobStore

__all__ = ["RecognitionRedactor", "delete_stored", "redact_document"]

# What a face that showed the deleted person says afterwards: nobody, as an unknown face does, and
# no distance, which was the distance to them.
_REDACTED_FACE = {"identity": None, "display_name": None, "distance": None}


def delete_stored(s3: Any, bucket: str, keys: list[str]) -> None:
    """Delete a deleted person's objects, every one or a StorageError: the erasure stops there,
    and the DELETE asked again deletes what is left."""
    try:
        delete_objects(s3, bucket, keys)
    except (BotoCoreError, ClientError, ObjectsNotDeletedError) as exc:
        raise StorageError(
            f"could not delete {len(keys)} objects of a deleted person from {bucket}", exc
        ) from exc


def redact_document(document: Any, person_id: str) -> bool:
    """Make every face of `person_id` in a result document (one job's, or a shared one's
    `results`) unknown, in place; whether any was."""
    if not isinstance(document, dict):
        return False
    if isinstance(document.get(SHARED_RESULTS), dict):
        # A list, not a generator: every job's document is redacted, not only the first found.
        return any([redact_document(each, person_id) for each in document[SHARED_RESULTS].values()])
    faces = document.get("faces")
    named = (
        [face for face in faces if face.get("identity") == person_id]
        if isinstance(faces, list)
        else []
    )
    for face in named:
        face.update(_REDACTED_FACE)
    return bool(named)


class RecognitionRedactor:
    def __init__(self, jobs: JobStore, s3: Any, settings: Settings) -> None:
        self._jobs = jobs
        self._s3 = s3
        self._settings = settings

    def redact(self, person_id: str) -> int:
        """Every recognition that named the person, a page of records at a time; how many."""
        redacted = 0
        for records in self._jobs.naming(person_id):
            for key in sorted(
                {record.get("result_key") or result_key(record["job_id"]) for record in records}
            ):
                self._rewrite(key, person_id)
            delete_stored(
                self._s3,
                self._settings.input_bucket,
                sorted({r["upload_key"] for r in records if "upload_key" in r}),
            )
            for record in records:
                identities = [
                    None if name == person_id else name for name in record["summary"][IDENTITIES]
                ]
                self._jobs.redact_identities(record["job_id"], identities)
            redacted += len(records)
        return redacted

    def _rewrite(self, key: str, person_id: str) -> None:
        """The result object without the person's names; one that expired (the bucket's lifecycle)
        or was rewritten by an earlier try is left as it is."""
        bucket = self._settings.output_bucket
        try:
            document = json.loads(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            if redact_document(document, person_id):
                self._s3.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=json.dumps(document).encode(),
                    ContentType=RESULT_CONTENT_TYPE,
                )
        except ClientError as exc:
            if not is_missing(exc):
                raise StorageError(f"could not redact the result {key}", exc) from exc
