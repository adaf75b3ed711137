"""CloudFormation in moto: deploy the template, and set what moto's CloudFormation skips.

moto creates the stack's resources from the packaged template, but not every property it reads:
bucket CORS, lifecycle and notifications, and state machines its workflow interpreter can run, are
applied again through the services' APIs, resolved from the deployed stack (`_Resolver`: Ref,
GetAtt and Fn::Sub of those and the pseudo parameters).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.stack import DEFAULT_TEMPLATE, ROOT, StackError, load_template, package_template
from statemachine import load_definition, render

_SUB_NAME = re.compile(r"\$\{([\w:.]+)\}")


@dataclass(frozen=True)
class _Resolver:
    """Resolves the few intrinsics bucket properties and function environments use, from the
    deployed stack: Ref, GetAtt, and Fn::Sub of those and the pseudo parameters."""

    parameters: Mapping[str, str]
    physical_ids: Mapping[str, str]
    attribute: Callable[[str, str], str]

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self._name(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            return self.attribute(self.physical_ids[logical_id], attribute)
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return _SUB_NAME.sub(lambda match: self._sub_name(match[1]), value["Fn::Sub"])
        if any(key.startswith("Fn::") for key in value):
            raise StackError(f"cannot resolve {value!r} in bucket settings")
        return {key: self(item) for key, item in value.items()}

    def _name(self, name: str) -> str:
        return self.parameters[name] if name in self.parameters else self.physical_ids[name]

    def _sub_name(self, name: str) -> str:
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return self.attribute(self.physical_ids[logical_id], attribute)
        return self._name(name)


def _cors(config: Mapping[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in config["CorsRules"]:
        api_rule = {
            k: rule[k]
            for k in ("AllowedMethods", "AllowedOrigins", "AllowedHeaders", "ExposedHeaders")
            if k in rule
        }
        if "MaxAge" in rule:
            api_rule["MaxAgeSeconds"] = int(rule["MaxAge"])
        rules.append(api_rule)
    return {"CORSRules": rules}


def _lifecycle(config: Mapping[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in config["Rules"]:
        api_rule: dict[str, Any] = {
            "ID": rule["Id"],
            "Status": rule["Status"],
            "Filter": {"Prefix": rule.get("Prefix", "")},
        }
        if "ExpirationInDays" in rule:
            api_rule["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        if "AbortIncompleteMultipartUpload" in rule:
            days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            api_rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
        rules.append(api_rule)
    return {"Rules": rules}


def _notifications(config: Mapping[str, Any]) -> dict[str, Any]:
    queues = []
    for entry in config.get("QueueConfigurations", []):
        api_entry: dict[str, Any] = {"QueueArn": entry["Queue"], "Events": [entry["Event"]]}
        rules = entry.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        if rules:
            api_entry["Filter"] = {
                "Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}
            }
        queues.append(api_entry)
    if set(config) - {"QueueConfigurations"}:
        raise StackError(f"only queue notifications are applied, not {sorted(set(config))}")
    return {"QueueConfigurations": queues}


def _stack_resolver(
    session: Any, stack_name: str, template: Mapping[str, Any], parameters: Mapping[str, str]
) -> tuple[_Resolver, dict[str, str]]:
    """A resolver for the deployed stack, and its physical ids by logical id."""
    cfn, sqs, iam = session.client("cloudformation"), session.client("sqs"), session.client("iam")
    physical_ids = {
        resource["LogicalResourceId"]: resource["PhysicalResourceId"]
        for resource in cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
        # moto lists resource types it does not support (AWS::SQS::QueuePolicy,
        # AWS::CloudWatch::Alarm) without ids, and some it does (a Lambda permission) without a
        # physical id.
        if "LogicalResourceId" in resource and "PhysicalResourceId" in resource
    }
    types = {physical_ids.get(name): spec["Type"] for name, spec in template["Resources"].items()}
    defaults = {
        name: str(spec["Default"])
        for name, spec in template.get("Parameters", {}).items()
        if "Default" in spec
    }

    def attribute(physical_id: str, name: str) -> str:
        kind = types.get(physical_id)
        if (kind, name) == ("AWS::SQS::Queue", "Arn"):
            return sqs.get_queue_attributes(QueueUrl=physical_id, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        if (kind, name) == ("AWS::SQS::Queue", "QueueName"):
            return physical_id.rsplit("/", 1)[-1]
        if (kind, name) == ("AWS::IAM::Role", "Arn"):
            return iam.get_role(RoleName=physical_id)["Role"]["Arn"]
        if (kind, name) == ("AWS::Lambda::Function", "Arn"):
            return session.client("lambda").get_function(FunctionName=physical_id)["Configuration"][
                "FunctionArn"
            ]
        raise StackError(f"cannot resolve attribute {name} of {kind} {physical_id}")

    caller = session.client("sts").get_caller_identity()
    pseudo = {
        "AWS::AccountId": caller["Account"],
        "AWS::Partition": caller["Arn"].split(":")[1],
        "AWS::Region": cfn.meta.region_name,
    }
    return _Resolver({**pseudo, **defaults, **parameters}, physical_ids, attribute), physical_ids


def resolve_in_stack(
    session: Any,
    stack_name: str,
    template: Mapping[str, Any],
    parameters: Mapping[str, str],
    value: Any,
) -> Any:
    """`value`, a piece of `template`, with its Ref, GetAtt and Sub resolved in the deployed
    stack."""
    resolve, _ = _stack_resolver(session, stack_name, template, parameters)
    return resolve(value)


def apply_bucket_settings(
    session: Any, stack_name: str, template: Mapping[str, Any], parameters: Mapping[str, str]
) -> None:
    """Set the bucket properties moto's CloudFormation skips, through the S3 API, from the
    template."""
    s3 = session.client("s3")
    resolve, physical_ids = _stack_resolver(session, stack_name, template, parameters)
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::S3::Bucket":
            continue
        properties = resource.get("Properties", {})
        bucket = physical_ids[logical_id]
        if "CorsConfiguration" in properties:
            cors = _cors(resolve(properties["CorsConfiguration"]))
            s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=cors)
        if "LifecycleConfiguration" in properties:
            lifecycle = _lifecycle(resolve(properties["LifecycleConfiguration"]))
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=lifecycle)
        if "NotificationConfiguration" in properties:
            notifications = _notifications(resolve(properties["NotificationConfiguration"]))
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration=notifications
            )


@dataclass(frozen=True)
class RenderedStateMachine:
    """A state machine of a deployed stack, its definition rendered with the stack's values."""

    name: str
    definition: str
    role_arn: str
    type: str


def rendered_state_machines(
    session: Any,
    stack_name: str,
    template: Mapping[str, Any],
    parameters: Mapping[str, str],
    root: Path = ROOT,
) -> list[RenderedStateMachine]:
    """Each state machine with a definition file, rendered with the same `render` and the
    stack's resolved DefinitionSubstitutions: what AWS would run, for engines that are not AWS."""
    resolve, physical_ids = _stack_resolver(session, stack_name, template, parameters)
    machines = []
    for logical_id, resource in template["Resources"].items():
        definition_file = resource.get("Metadata", {}).get("facerec:DefinitionFile")
        if resource["Type"] != "AWS::StepFunctions::StateMachine" or not definition_file:
            continue
        properties = resource["Properties"]
        if (
            "DefinitionString" in properties
        ):  # a packaged template: the Fn::Sub holds the definition
            definition = resolve(properties["DefinitionString"])
        else:
            values = {
                key: resolve(value)
                for key, value in properties.get("DefinitionSubstitutions", {}).items()
            }
            definition = render(load_definition(root / definition_file), values)
        machines.append(
            RenderedStateMachine(
                name=physical_ids[logical_id].rsplit(":", 1)[-1],
                definition=definition,
                role_arn=resolve(properties["RoleArn"]),
                type=resolve(properties.get("StateMachineType", "STANDARD")),
            )
        )
    return machines


def create_state_machines_via_api(
    session: Any, stack_name: str, template: Mapping[str, Any], parameters: Mapping[str, str]
) -> None:
    """Create the stack's state machines again through the Step Functions API, for moto.

    moto's CloudFormation puts state machines in a backend that its workflow interpreter does not
    see; CreateStateMachine through the API lands where executions run, under the same name and ARN.
    """
    sfn = session.client("stepfunctions")
    for machine in rendered_state_machines(session, stack_name, template, parameters):
        sfn.create_state_machine(
            name=machine.name,
            definition=machine.definition,
            roleArn=machine.role_arn,
            type=machine.type,
        )


def deploy_stack(
    session: Any,
    stack_name: str,
    parameters: Mapping[str, str],
    template_path: Path = DEFAULT_TEMPLATE,
    timeout_seconds: float = 120.0,
) -> dict[str, str]:
    """Create the stack from the packaged template and return its outputs by key."""
    cfn = session.client("cloudformation")
    packaged = package_template(load_template(template_path))
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(packaged),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    deadline = time.monotonic() + timeout_seconds
    while True:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        if stack["StackStatus"] == "CREATE_COMPLETE":
            return {
                output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])
            }
        if not stack["StackStatus"].endswith("IN_PROGRESS") or time.monotonic() > deadline:
            raise StackError(
                f"stack {stack_name} is {stack['StackStatus']}: "
                f"{stack.get('StackStatusReason', '')}"
            )
        time.sleep(1)
