"""The admin credential for gallery changes: a shared secret in the X-Admin-Token header."""

from __future__ import annotations

import functools
import hmac
from typing import Any, Callable, Mapping

from botocore.exceptions import ClientError

from .exceptions import ForbiddenError, ServiceError, UnauthorizedError

__all__ = ["ADMIN_HEADER", "AdminAuth", "ssm_secret"]

ADMIN_HEADER = "X-Admin-Token"


def ssm_secret(ssm_client: Any, parameter: str) -> Callable[[], str]:
    """Read a SecureString parameter once per Lambda container, on first use."""

    @functools.cache
    def read() -> str:
        try:
            return ssm_client.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
        except ClientError as exc:
            raise ServiceError(f"could not read the admin token from {parameter}", exc) from exc

    return read


class AdminAuth:
    def __init__(self, secret: Callable[[], str]) -> None:
        self._secret = secret

    def require(self, headers: Mapping[str, str]) -> None:
        """Raise unless the request carries the configured admin token."""
        presented = headers.get(ADMIN_HEADER.lower()) or headers.get(ADMIN_HEADER)
        if not presented:
            raise UnauthorizedError(f"gallery changes need the {ADMIN_HEADER} header")
        secret = self._secret()
        if not secret:
            raise ForbiddenError("gallery changes are disabled: no admin token is configured")
        # Constant-time, so the comparison leaks nothing about the secret's prefix.
        if not hmac.compare_digest(presented.encode(), secret.encode()):
            raise ForbiddenError(f"the {ADMIN_HEADER} header does not match")
