"""Reading finished jobs' results from the output bucket, whichever object holds them.

A worker writes one object for all the photos it recognized in one batch of messages (one S3 PUT,
not one per photo), and a job's own object when it recognized that job alone; the job's DONE
record names the object (`result_key`). Records from before shared objects name none.

Who reads a result decides what it says: anyone holding a job's id sees whom each face shows; only
an operator, with the admin token, sees how close each face came to the gallery (`ResultView`).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from .auth import ADMIN_HEADER, AdminAuth
from .contract import SHARED_RESULTS, result_key
from .exceptions import StorageError

__all__ = ["ResultReader", "ResultView", "result_view"]

# What a face tells anyone: where it is and whom it shows. Listed rather than the rest filtered
# out, so that a field a worker adds later (a distance by another name, a runner-up) stays with
# operators until someone decides the public may see it.
_PUBLIC_FACE_FIELDS = ("box", "probability", "landmarks", "identity", "display_name")


class ResultView(enum.StrEnum):
    """Who reads a result. Recognition is anonymous, but a face's distance to its nearest enrolled
    person, matched or not, is an oracle: photo after photo, a prober learns how near they come to
    someone enrolled (issue 19). The public gets names; operators get the whole document."""

    PUBLIC = "public"
    ADMIN = "admin"


def result_view(headers: Mapping[str, str], admin: AdminAuth) -> ResultView:
    """The view a request gets: the admin one only with the right token. A wrong token is refused
    rather than answered publicly, so that an operator learns their token is wrong."""
    if not any(name.lower() == ADMIN_HEADER.lower() for name in headers):
        return ResultView.PUBLIC
    admin.require(headers)
    return ResultView.ADMIN


class ResultReader:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def read(
        self, records: Mapping[str, Mapping[str, Any]], view: ResultView = ResultView.PUBLIC
    ) -> dict[str, Any]:
        """The result documents of these DONE jobs' records, by job id, reading each object once,
        as `view` may see them (public by default: a caller that forgets the view leaks nothing)."""
        by_key: dict[str, list[str]] = {}
        for job_id, record in records.items():
            by_key.setdefault(record.get("result_key") or result_key(job_id), []).append(job_id)
        documents: dict[str, Any] = {}
        for key, job_ids in by_key.items():
            document = self._object(key, job_ids[0])
            shared = document.get(SHARED_RESULTS) if isinstance(document, dict) else None
            for job_id in job_ids:
                documents[job_id] = shared[job_id] if shared is not None else document
        if view is ResultView.ADMIN:
            return documents
        return {job_id: _public(document) for job_id, document in documents.items()}

    def _object(self, key: str, job_id: str) -> Any:
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            raise StorageError(
                f"job {job_id} is done but its result {key} cannot be read", exc
            ) from exc
        return json.loads(body)


def _public(document: Any) -> Any:
    """The document with each face cut to what the public may see; one without faces (a failed
    photo, an enrollment, a compaction) as it is."""
    faces = document.get("faces") if isinstance(document, dict) else None
    if not isinstance(faces, list):
        return document
    return {
        **document,
        "faces": [{k: face[k] for k in _PUBLIC_FACE_FIELDS if k in face} for face in faces],
    }
