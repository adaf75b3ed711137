"""A record of each admin request: what was asked, by which caller, and whether the token let it.

The admin token is one shared secret, so it cannot say who used it; the record names the caller
by what API Gateway knows of the request: its API key's id, source address and user agent, and
its request id (the one API Gateway's own logs carry). A person is recorded as a keyed digest,
never by id: log lines outlive a deletion (the functions' log groups keep 14 days), and a line
naming the person would be a copy the deletion cannot reach. An operator who knows a person's id
finds the lines about them by computing the same digest (`AdminAuth.digest`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["AdminRequest", "record"]

logger = logging.getLogger("facerec.audit")


@dataclass(frozen=True)
class AdminRequest:
    action: str
    person_digest: str | None
    source_ip: str | None
    user_agent: str | None
    api_key_id: str | None
    request_id: str | None

    @classmethod
    def of(
        cls,
        action: str,
        person_digest: str | None,
        context: Mapping[str, Any],
        headers: Mapping[str, str],
    ) -> AdminRequest:
        """`context` is the request's API Gateway context (Chalice's `current_request.context`)."""
        identity = context.get("identity") or {}
        return cls(
            action=action,
            person_digest=person_digest,
            source_ip=identity.get("sourceIp"),
            user_agent=headers.get("user-agent"),
            api_key_id=identity.get("apiKeyId"),
            request_id=context.get("requestId"),
        )


def record(request: AdminRequest, allowed: bool) -> None:
    """One line per admin request, the refused ones too: a guessed token shows as a run of them."""
    logger.info(
        "admin request: %s, %s",
        request.action,
        "allowed" if allowed else "refused",
        extra={"audit": {**asdict(request), "allowed": allowed}},
    )
