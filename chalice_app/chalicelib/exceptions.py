"""The control plane's exceptions: one base, request errors that map to 4xx, service errors that
wrap AWS.

ControlPlaneError
├── RequestError            the client sent something we refuse; carries its HTTP status
│   ├── BadRequestError     400: malformed or invalid input
│   ├── UnauthorizedError   401: no admin credential
│   ├── ForbiddenError      403: wrong admin credential, or none configured
│   ├── NotFoundError       404: unknown job or person
│   └── ConflictError       409: the thing exists already
└── ServiceError            an AWS call failed; the original error is chained
    ├── JobStoreError       DynamoDB's jobs table
    ├── PeopleStoreError    DynamoDB's people table
    ├── LeaseError          DynamoDB's leases table (the scale-up lease and its fleet ledger)
    ├── StorageError        S3
    ├── WorkflowError       Step Functions
    └── ScalingError        SQS attributes or EC2 during scale-up
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequestError",
    "ConflictError",
    "ControlPlaneError",
    "ForbiddenError",
    "JobStoreError",
    "LeaseError",
    "NotFoundError",
    "PeopleStoreError",
    "RequestError",
    "ScalingError",
    "ServiceError",
    "StorageError",
    "UnauthorizedError",
    "WorkflowError",
    "uniform_error_body",
]


class ControlPlaneError(Exception):
    """Base of every error the control plane raises on purpose (the Python client's own base is
    facerec_client.FacerecError)."""


class RequestError(ControlPlaneError):
    """A request we refuse; `code` and `message` become the JSON error body."""

    status_code = 400
    code = "BadRequest"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_body(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class BadRequestError(RequestError):
    status_code = 400
    code = "BadRequest"


class UnauthorizedError(RequestError):
    status_code = 401
    code = "Unauthorized"


class ForbiddenError(RequestError):
    status_code = 403
    code = "Forbidden"


class NotFoundError(RequestError):
    status_code = 404
    code = "NotFound"


class ConflictError(RequestError):
    status_code = 409
    code = "Conflict"


class ServiceError(ControlPlaneError):
    """An AWS call failed; `raise XError("what we were doing", exc) from exc`."""


class JobStoreError(ServiceError):
    pass


class PeopleStoreError(ServiceError):
    pass


class LeaseError(ServiceError):
    pass


class StorageError(ServiceError):
    pass


class WorkflowError(ServiceError):
    pass


class ScalingError(ServiceError):
    pass


def uniform_error_body(body: Any) -> Any:
    """Chalice's own refusals (`{"Code", "Message"}`: an unsupported media type, a malformed JSON
    body, an internal error) in the shape every other refusal of the API has."""
    if isinstance(body, dict) and set(body) == {"Code", "Message"}:
        return {"error": body["Code"].removesuffix("Error"), "message": body["Message"]}
    return body
