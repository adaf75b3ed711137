"""IAM on the local stack: every request is authorized as AWS would authorize it, but the
operator's.

Each part of the stack calls moto with credentials from AssumeRole on its own role in the template
(local_service.roles), so a permission missing from a role fails here, as AccessDenied, rather than
at the first deploy. The operator (the tests' and the service's own clients, playing whoever runs
`make deploy`) signs with LOCAL_CREDENTIALS and is not checked. A request signed by nobody is
refused, as AWS refuses an anonymous one that no bucket policy grants.

moto's own check (`INITIAL_NO_AUTH_ACTION_COUNT`) is not used: it authorizes most services on
Resource "*" and reads an Allow whose condition it cannot evaluate as a Deny (iam_requests says
what is built instead). Signatures are not verified: a key id names the caller, which is all a
permission check needs here.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

from moto.core.exceptions import AccessDeniedError, JsonRESTError
from moto.iam.access_control import AssumedRoleAccessKey, CreateAccessKeyFailure
from moto.s3.exceptions import BucketAccessDeniedError, S3AccessDeniedError

from .account import LOCAL_CREDENTIALS
from .iam_policy import PolicyEvaluationError, Request, allowed
from .iam_requests import RequestFacts, json_parameters, requests_for

__all__ = ["authorize"]

logger = logging.getLogger(__name__)

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_OPERATOR_KEY = LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]


def _signer(response: Any) -> tuple[str | None, str]:
    """The access key id a request was signed with (its Authorization header, or a presigned URL's
    or POST form's credential field) and its session token."""
    headers = response.headers
    match = _CREDENTIAL.search(headers.get("Authorization") or "")
    if match:  # nearly every request: no need to look through its parameters
        return match[1], headers.get("X-Amz-Security-Token") or ""
    query = {key.lower(): values for key, values in (response.querystring or {}).items()}

    def first(name: str) -> str:
        values = query.get(name.lower())
        return values[0] if values else ""

    # SigV4's presigned URL or POST form, else SigV2's (botocore's presigned POST default).
    credential = first("X-Amz-Credential").split("/", 1)[0] or first("AWSAccessKeyId")
    return credential or None, first("X-Amz-Security-Token")


def _statements(policies: list[Any]) -> Iterator[Mapping[str, Any]]:
    for policy in policies:
        if isinstance(policy, str | Mapping):  # an inline policy, as text or as CloudFormation's
            document = policy
        else:  # a managed policy: its default version
            document = next(v.document for v in policy.versions if v.is_default)
        parsed = json.loads(document) if isinstance(document, str) else document
        statements = parsed["Statement"]
        yield from statements if isinstance(statements, list) else [statements]


def _refuse(response: Any, caller: str, request: Request, why: str) -> NoReturn:
    """Raise the error each service answers a refusal with: S3's AccessDenied, the JSON
    protocols' AccessDeniedException, else AccessDenied."""
    logger.warning(
        "AccessDenied: %s may not %s on %s (%s)", caller, request.action, request.resource, why
    )
    if response.service_name == "s3":
        bucket = getattr(response, "bucket_name", None)
        raise BucketAccessDeniedError(bucket) if bucket else S3AccessDeniedError()
    if "json" in (response.headers.get("Content-Type") or ""):
        error = JsonRESTError(
            "AccessDeniedException",
            f"User: {caller} is not authorized to perform: {request.action} on resource: "
            f"{request.resource}",
        )
        error.code = 403
        raise error
    # EC2 names it UnauthorizedOperation; moto's error for the query protocols says AccessDenied.
    raise AccessDeniedError(user_arn=caller, action=f"{request.action} on {request.resource}")


def authorize(response: Any, resource: str) -> None:
    """Refuse (moto's AccessDenied) a request the caller's role does not allow."""
    key, token = _signer(response)
    if key == _OPERATOR_KEY:
        return
    action = response._get_action()
    if key is None:
        _refuse(
            response,
            "anonymous",
            Request(f"{response.service_name}:{action}", resource),
            "unsigned",
        )
    try:
        identity = AssumedRoleAccessKey(
            response.current_account, "aws", key, {"X-Amz-Security-Token": token}
        )
    except CreateAccessKeyFailure as failure:
        _refuse(
            response, key, Request(f"{response.service_name}:{action}", resource), failure.reason
        )
    body = response.raw_body or b""
    body = body if isinstance(body, bytes) else str(body).encode()
    facts = RequestFacts(
        service=response.service_name,
        action=action,
        account=response.current_account,
        region=response.region,
        parameters=lambda: json_parameters(body),
        querystring=response.querystring or {},
        body=body,
        path=response.path,
        resource=resource,
        caller_arn=identity.arn,
    )
    statements = list(_statements(identity.collect_policies()))
    for request in requests_for(facts):
        try:
            permitted = allowed(statements, request)
        except PolicyEvaluationError as error:
            _refuse(response, identity.arn, request, str(error))
        if not permitted:
            _refuse(response, identity.arn, request, "no statement allows it")
