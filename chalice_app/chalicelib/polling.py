"""What a status answer tells a poller: an ETag, so that an unchanged answer costs a 304 and no
result reads, and a Retry-After, so that a client asks again no sooner than the work can change.

Every poll is an API Gateway request and a Lambda invocation (about $4 per million at the
prod stage's 512 MB), more than the photo's compute. A job waiting in the queue, as it does for a
cold fleet's boot (about half a minute on AWS), is asked after as long again as it has waited, up
to `max_retry_after_seconds`: a few polls whatever the wait, each answer at most that late. A job
a worker holds is asked after a second.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .contract import TERMINAL_STATUSES, JobStatus

__all__ = ["PollAnswer", "etag", "poll_headers", "retry_after_seconds", "waited_seconds"]


@dataclass(frozen=True)
class PollAnswer:
    """A status answer: 304 with no body when the client's ETag still holds."""

    status_code: int
    body: dict[str, Any] | None
    headers: dict[str, str]


def etag(state: Any) -> str:
    """A strong ETag of whatever the answer is made of (JSON-serialisable), quoted as HTTP wants."""
    digest = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[
        :32
    ]
    return f'"{digest}"'


def retry_after_seconds(
    statuses: Iterable[str], waited_seconds: float, max_seconds: int
) -> int | None:
    """Seconds until the next poll is worth making; None when every status is final."""
    pending = {JobStatus(status) for status in statuses} - TERMINAL_STATUSES
    if not pending:
        return None
    if JobStatus.PROCESSING in pending:
        return 1
    return int(min(max_seconds, max(1.0, waited_seconds)))


def waited_seconds(record: Mapping[str, Any], now: float) -> float:
    """How long a job (or batch) has waited since it was queued, or created if it is not yet."""
    return now - datetime.fromisoformat(record.get("queued_at") or record["created_at"]).timestamp()


def poll_headers(
    state: Any, statuses: Iterable[str], waited: float, max_seconds: int
) -> dict[str, str]:
    """The ETag of `state`, and a Retry-After while any status is not final."""
    headers = {"ETag": etag(state)}
    retry_after = retry_after_seconds(statuses, waited, max_seconds)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return headers
