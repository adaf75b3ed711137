"""Reading finished jobs' results from the output bucket, whichever object holds them.

A worker writes one object for all the photos it recognized in one batch of messages (one S3 PUT,
not one per photo), and a job's own object when it recognized that job alone; the job's DONE
record names the object (`result_key`). Records from before shared objects name none.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from botocore.exceptions import ClientError

from .contract import SHARED_RESULTS, result_key
from .exceptions import StorageError

__all__ = ["ResultReader"]


class ResultReader:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def read(self, records: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """The result documents of these DONE jobs' records, by job id, reading each object once."""
        by_key: dict[str, list[str]] = {}
        for job_id, record in records.items():
            by_key.setdefault(record.get("result_key") or result_key(job_id), []).append(job_id)
        documents: dict[str, Any] = {}
        for key, job_ids in by_key.items():
            document = self._object(key, job_ids[0])
            shared = document.get(SHARED_RESULTS) if isinstance(document, dict) else None
            for job_id in job_ids:
                documents[job_id] = shared[job_id] if shared is not None else document
        return documents

    def _object(self, key: str, job_id: str) -> Any:
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            raise StorageError(f"job {job_id} is done but its result {key} cannot be read", exc) from exc
        return json.loads(body)
