"""A gallery's manifest as its readers take it: the workers, and the compaction schedule."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from .aws import is_missing_object
from .keys import MANIFEST_PENDING

__all__ = ["read_manifest"]


def read_manifest(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """The manifest at `key` with its ETag (`etag`), or an empty gallery's when there is none
    yet (no compaction ran). A manifest written before compactions left changes pending names
    none."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_missing_object(s3, bucket, key, exc):
            return {"etag": None, "snapshot": None, "through": "", MANIFEST_PENDING: []}
        raise
    return {MANIFEST_PENDING: [], **json.loads(response["Body"].read()), "etag": response["ETag"]}
