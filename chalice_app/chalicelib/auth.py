"""The admin credential for gallery changes and the admin view: a shared secret in the X-Admin-Token
header."""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from .config import Settings
from .contract import ResourceNames
from .exceptions import ForbiddenError, ServiceError, UnauthorizedError

__all__ = ["ADMIN_HEADER", "AdminAuth", "admin_secret", "ssm_secret"]

logger = logging.getLogger(__name__)

ADMIN_HEADER = "X-Admin-Token"


def admin_secret(settings: Settings, ssm_client: Callable[[], Any]) -> Callable[[], str]:
    """The admin token's source: the SecureString a deployed stage names, or, on the local stack
    alone, the plaintext FACEREC_ADMIN_TOKEN. A plaintext token anywhere else is ignored, loudly:
    it would sit in the function's configuration for anyone who may read that."""
    if settings.admin_token_parameter:
        return ssm_secret(ssm_client(), settings.admin_token_parameter)
    if settings.admin_token and not settings.is_local_stack:
        logger.error(
            "FACEREC_ADMIN_TOKEN is ignored: a plaintext admin token counts on the local stack "
            "only. Store the token as a SecureString (make deploy creates %s) and set "
            "FACEREC_ADMIN_TOKEN_PARAMETER to its name; until then admin requests are refused.",
            ResourceNames(settings.stage_prefix).admin_token_parameter,
        )
        return lambda: ""
    return lambda: settings.admin_token


def ssm_secret(ssm_client: Any, parameter: str) -> Callable[[], str]:
    """Read a SecureString parameter once per Lambda container, on first use."""

    @functools.cache
    def read() -> str:
        try:
            return ssm_client.get_parameter(Name=parameter, WithDecryption=True)["Parameter"][
                "Value"
            ]
        except ClientError as exc:
            raise ServiceError(f"could not read the admin token from {parameter}", exc) from exc

    return read


class AdminAuth:
    def __init__(self, secret: Callable[[], str]) -> None:
        self._secret = secret

    def digest(self, value: str) -> str | None:
        """`value` keyed by the admin token (HMAC-SHA256, 16 hex digits): the audit names a person
        by it, so that only someone holding the token can tell whom a line is about. None when
        no token is configured (every admin request is refused then)."""
        secret = self._secret()
        if not secret:
            return None
        return hmac.new(secret.encode(), value.encode(), "sha256").hexdigest()[:16]

    def require(self, headers: Mapping[str, str]) -> None:
        """Raise unless the request carries the configured admin token."""
        presented = headers.get(ADMIN_HEADER.lower()) or headers.get(ADMIN_HEADER)
        if not presented:
            raise UnauthorizedError(
                f"gallery changes and the admin view need the {ADMIN_HEADER} header"
            )
        secret = self._secret()
        if not secret:
            raise ForbiddenError(
                "gallery changes and the admin view are disabled: no admin token is configured"
            )
        # Constant-time, so the comparison leaks nothing about the secret's prefix.
        if not hmac.compare_digest(presented.encode(), secret.encode()):
            raise ForbiddenError(f"the {ADMIN_HEADER} header does not match")
