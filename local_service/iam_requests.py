"""What IAM authorizes for a request moto answers: each action, on each resource, with its keys.

moto's own access control checks every action on Resource "*" except for S3, SQS, STS and IAM,
and gives conditions no values but a trust policy's, so a statement scoped to a table, a function
or a workflow never matches, and an Allow with a condition becomes a Deny. This module says, for
the calls the stack makes, what AWS's request context holds (Service Authorization Reference):

- DynamoDB: the table's ARN, and `dynamodb:LeadingKeys` (the partition key values the request
  names); a transaction's parts are authorized as the item actions they are.
- SQS: the queue's ARN, from its URL; the batch calls as the actions they batch (SendMessageBatch is
  sqs:SendMessage).
- S3: the bucket or object ARN moto names, the key of a POST form upload and each key of a
  multi-object delete; `s3:prefix` for a listing.
- Step Functions, Lambda and SSM: the state machine, execution, function or parameter ARN.
- EC2: on an instance, its ARN with `ec2:ResourceTag/*` and `ec2:InstanceID`; RunInstances as
  IAM sees it with a launch template: the template, the instance, the volume, the image and the
  network parts, each with `ec2:LaunchTemplate`, the template's instance type and the tags the
  request and the template put on each, plus ec2:CreateTags for those tags and iam:PassRole for
  the instance profile's role.
- Credentials an instance's role issued to the instance (a session named by its instance id, as
  EC2's instance-profile sessions are) carry `ec2:SourceInstanceARN`.

Anything else is authorized on "*", where only a statement on "*" grants it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from xml.etree import ElementTree

from moto.dynamodb.models import dynamodb_backends
from moto.ec2.exceptions import InvalidInstanceIdError
from moto.ec2.models import ec2_backends
from moto.iam.exceptions import NotFoundException as IamNotFound
from moto.iam.models import iam_backends

from .iam_policy import Request

__all__ = ["RequestFacts", "json_parameters", "requests_for"]

_INSTANCE_ID = re.compile(r"^i-[0-9a-f]+$")
# What moto calls an action, where IAM names it otherwise.
_IAM_ACTIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "lambda:Invoke": "lambda:InvokeFunction",
}
# The IAM prefix of each of moto's service names, where they differ.
_PREFIXES = {"stepfunctions": "states", "awslambda": "lambda", "monitoring": "cloudwatch"}
_DYNAMODB_TRANSACTION_PARTS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


class RequestFacts:
    """One request as moto received it: who, where, which action, its parameters."""

    def __init__(
        self,
        *,
        service: str,
        action: str,
        account: str,
        region: str,
        parameters: Callable[[], Mapping[str, Any]],
        querystring: Mapping[str, list[str]],
        body: bytes,
        path: str,
        resource: str,
        caller_arn: str,
    ) -> None:
        self.service = service
        self.action = action
        self.account = account
        self.region = region
        self._parameters = parameters
        self.querystring = querystring
        self.body = body
        self.path = path
        self.resource = resource
        self.caller_arn = caller_arn

    def parameters(self) -> Mapping[str, Any]:
        return self._parameters()

    def query(self, name: str) -> str | None:
        values = self.querystring.get(name)
        return values[0] if values else None

    def arn(self, service: str, resource: str, region: str | None = None) -> str:
        region = self.region if region is None else region
        return f"arn:aws:{service}:{region}:{self.account}:{resource}"

    def caller_context(self) -> dict[str, str]:
        """Keys the credentials themselves carry: an instance's session names its instance."""
        session = self.caller_arn.rsplit("/", 1)[-1]
        if ":assumed-role/" in self.caller_arn and _INSTANCE_ID.match(session):
            return {"ec2:SourceInstanceARN": self.arn("ec2", f"instance/{session}")}
        return {}


def requests_for(facts: RequestFacts) -> list[Request]:
    """Every (action, resource, keys) IAM authorizes for this request."""
    prefix = _PREFIXES.get(facts.service, facts.service)
    action = _IAM_ACTIONS.get(f"{prefix}:{facts.action}", f"{prefix}:{facts.action}")
    caller = facts.caller_context()
    build = _BUILDERS.get(prefix)
    requests = build(facts, action) if build else [Request(action, facts.resource)]
    return [Request(r.action, r.resource, {**caller, **r.context}) for r in requests]


# --- DynamoDB ----------------------------------------------------------------------------------


def _table_arn(facts: RequestFacts, table: str) -> str:
    return facts.arn("dynamodb", f"table/{table}")


def _partition_values(facts: RequestFacts, table: str, items: list[Mapping[str, Any]]) -> list[str]:
    known = dynamodb_backends[facts.account][facts.region].tables.get(table)
    if known is None:  # an unknown table: DynamoDB answers ResourceNotFound after authorizing
        return []
    key = known.hash_key_attr
    return [str(next(iter(item[key].values()))) for item in items if key in item]


def _dynamodb(facts: RequestFacts, action: str) -> list[Request]:
    params = facts.parameters()
    if "RequestItems" in params:  # BatchGetItem, BatchWriteItem
        requests = []
        for table, spec in params["RequestItems"].items():
            if isinstance(spec, dict):
                items = spec.get("Keys", [])
            else:
                items = [
                    write.get("PutRequest", {}).get("Item") or write["DeleteRequest"]["Key"]
                    for write in spec
                ]
            requests.append(
                Request(
                    action,
                    _table_arn(facts, table),
                    {"dynamodb:LeadingKeys": _partition_values(facts, table, items)},
                )
            )
        return requests
    if "TransactItems" in params:
        requests = []
        for item in params["TransactItems"]:
            ((part, spec),) = item.items()
            table = spec["TableName"]
            keys = _partition_values(facts, table, [spec.get("Key") or spec.get("Item") or {}])
            requests.append(
                Request(
                    _DYNAMODB_TRANSACTION_PARTS[part],
                    _table_arn(facts, table),
                    {"dynamodb:LeadingKeys": keys},
                )
            )
        return requests
    table = params.get("TableName")
    if not table:
        return [Request(action, facts.resource)]
    item = params.get("Key") or params.get("Item")
    context = {"dynamodb:LeadingKeys": _partition_values(facts, table, [item])} if item else {}
    return [Request(action, _table_arn(facts, table), context)]


# --- S3 ----------------------------------------------------------------------------------------


def _s3(facts: RequestFacts, action: str) -> list[Request]:
    resource = facts.resource
    if action == "s3:PutObject" and "/" not in resource.split(":::", 1)[-1]:
        key = facts.query("key")  # a POST form upload names its key in the form
        if key is not None:
            return [Request(action, f"{resource}/{key}")]
    if action == "s3:DeleteObject" and "/" not in resource.split(":::", 1)[-1] and facts.body:
        keys = [
            element.text or ""
            for element in ElementTree.fromstring(facts.body).iter()
            if element.tag.rsplit("}", 1)[-1] == "Key"
        ]
        return [Request(action, f"{resource}/{key}") for key in keys]
    prefix = facts.query("prefix")
    context = {"s3:prefix": prefix} if action == "s3:ListBucket" and prefix is not None else {}
    return [Request(action, resource, context)]


# --- SQS ---------------------------------------------------------------------------------------


def _sqs(facts: RequestFacts, action: str) -> list[Request]:
    """The queue's ARN from its URL or name: IAM authorizes it before SQS looks the queue up (a
    deleted queue is NonExistentQueue, not AccessDenied)."""
    params = facts.parameters()
    queue = (
        params.get("QueueUrl")
        or facts.query("QueueUrl")
        or params.get("QueueName")
        or facts.query("QueueName")
    )
    if not queue:
        return [Request(action, facts.resource)]
    return [Request(action, facts.arn("sqs", queue.rstrip("/").rsplit("/", 1)[-1]))]


# --- Step Functions, Lambda, SSM ---------------------------------------------------------------


def _states(facts: RequestFacts, action: str) -> list[Request]:
    params = facts.parameters()
    arn = params.get("stateMachineArn") or params.get("executionArn")
    return [Request(action, arn or facts.resource)]


def _lambda(facts: RequestFacts, action: str) -> list[Request]:
    match = re.search(r"/functions/([^/]+)", facts.path)
    if not match:
        return [Request(action, facts.resource)]
    name = match[1].replace("%3A", ":")
    arn = name if name.startswith("arn:") else facts.arn("lambda", f"function:{name}")
    return [Request(action, arn)]


def _ssm(facts: RequestFacts, action: str) -> list[Request]:
    name = facts.parameters().get("Name")
    if not name:
        return [Request(action, facts.resource)]
    return [Request(action, facts.arn("ssm", f"parameter/{name.lstrip('/')}"))]


# --- EC2 ---------------------------------------------------------------------------------------


def _numbered(facts: RequestFacts, name: str) -> list[str]:
    pattern = re.compile(rf"^{re.escape(name)}\.\d+$")
    return [values[0] for key, values in sorted(facts.querystring.items()) if pattern.match(key)]


def _tags_of(tags: list[Mapping[str, str]]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags}


def _on_instances(facts: RequestFacts, action: str) -> list[Request]:
    backend = ec2_backends[facts.account][facts.region]
    requests = []
    for instance_id in _numbered(facts, "InstanceId"):
        try:
            instance = backend.get_instance(instance_id)
        except InvalidInstanceIdError:  # EC2 answers InvalidInstanceID.NotFound after authorizing
            tags = {}
        else:
            tags = {tag["key"]: tag["value"] for tag in instance.get_tags()}
        context = {f"ec2:ResourceTag/{k}": v for k, v in tags.items()}
        context["ec2:InstanceID"] = instance_id
        requests.append(Request(action, facts.arn("ec2", f"instance/{instance_id}"), context))
    return requests


def _request_tags(facts: RequestFacts, template_data: Mapping[str, Any]) -> dict[str, dict]:
    """The tags RunInstances puts on each resource type: the template's and the request's."""
    tags: dict[str, dict[str, str]] = {}
    for spec in template_data.get("TagSpecifications", []) or []:
        tags.setdefault(spec["ResourceType"], {}).update(_tags_of(spec.get("Tags", [])))
    for number in sorted({k.split(".")[1] for k in facts.querystring if k.startswith("TagSpec")}):
        kind = facts.query(f"TagSpecification.{number}.ResourceType") or ""
        for tag in range(1, 51):
            key = facts.query(f"TagSpecification.{number}.Tag.{tag}.Key")
            if key is None:
                break
            value = facts.query(f"TagSpecification.{number}.Tag.{tag}.Value") or ""
            tags.setdefault(kind, {})[key] = value
    return tags


def _instance_profile_role(facts: RequestFacts, profile: Mapping[str, str]) -> str | None:
    iam = iam_backends[facts.account]["aws"]
    name = profile.get("Name") or profile.get("Arn", "").rsplit("/", 1)[-1]
    try:
        roles = iam.get_instance_profile(name).roles
    except IamNotFound:
        return None
    return roles[0].arn if roles else None


def _run_instances(facts: RequestFacts, action: str) -> list[Request]:
    backend = ec2_backends[facts.account][facts.region]
    name = facts.query("LaunchTemplate.LaunchTemplateName")
    template_id = facts.query("LaunchTemplate.LaunchTemplateId")
    if not (name or template_id):
        return [Request(action, facts.arn("ec2", "instance/*"))]
    template = (
        backend.get_launch_template_by_name(name)
        if name
        else backend.get_launch_template(template_id or "")
    )
    data: Mapping[str, Any] = template.default_version().data
    template_arn = facts.arn("ec2", f"launch-template/{template.id}")
    launching = {"ec2:LaunchTemplate": template_arn}
    instance_type = facts.query("InstanceType") or data.get("InstanceType", "")
    image = facts.query("ImageId") or data.get("ImageId", "")
    tags = _request_tags(facts, data)

    def tagged(kind: str) -> dict[str, str]:
        return {f"aws:RequestTag/{k}": v for k, v in tags.get(kind, {}).items()}

    requests = [
        Request(action, template_arn, launching),
        Request(
            action,
            facts.arn("ec2", "instance/*"),
            {**launching, **tagged("instance"), "ec2:InstanceType": instance_type},
        ),
        Request(action, facts.arn("ec2", "volume/*"), {**launching, **tagged("volume")}),
        Request(action, f"arn:aws:ec2:{facts.region}::image/{image}", launching),
        *(
            Request(action, facts.arn("ec2", f"{kind}/*"), launching)
            for kind in ("subnet", "network-interface", "security-group")
        ),
        *(
            Request(
                "ec2:CreateTags",
                facts.arn("ec2", f"{kind}/*"),
                {"ec2:CreateAction": "RunInstances", **tagged(kind)},
            )
            for kind in ("instance", "volume")
            if tags.get(kind)
        ),
    ]
    role = _instance_profile_role(facts, data.get("IamInstanceProfile") or {})
    if role:
        requests.append(Request("iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"}))
    return requests


def _ec2(facts: RequestFacts, action: str) -> list[Request]:
    if action == "ec2:RunInstances":
        return _run_instances(facts, action)
    if _numbered(facts, "InstanceId") and not action.startswith("ec2:Describe"):
        return _on_instances(facts, action)
    return [Request(action, "*")]


def json_parameters(body: bytes) -> Mapping[str, Any]:
    """A JSON-protocol request's parameters (DynamoDB, Step Functions, SSM); {} for any other."""
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


_BUILDERS: dict[str, Callable[[RequestFacts, str], list[Request]]] = {
    "dynamodb": _dynamodb,
    "s3": _s3,
    "sqs": _sqs,
    "states": _states,
    "lambda": _lambda,
    "ssm": _ssm,
    "ec2": _ec2,
}
