"""Reading CloudFormation templates in tests: what a template refers to, SAM's transform, and the
one resource of its output that moto cannot take."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

from infra.merge import package_stage
from local_service.cloudformation import resolve_in_stack

PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::Partition",
        "AWS::Region",
        "AWS::StackName",
        "AWS::URLSuffix",
        "AWS::NoValue",
    }
)
_SUB_NAME = re.compile(r"\$\{([^!][^}]*)\}")


def references(value: Any) -> Iterator[str]:
    """Every logical id or parameter that `value` refers to: Ref, GetAtt, and names in Fn::Sub."""
    if isinstance(value, list):
        for item in value:
            yield from references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref":
                # SAM's `<api>.Stage` refers to the API, whose stage SAM makes.
                yield item.split(".")[0]
            elif key == "Fn::GetAtt":
                yield item[0] if isinstance(item, list) else item.split(".")[0]
            elif key == "Fn::Sub":
                text, variables = (item, {}) if isinstance(item, str) else (item[0], item[1])
                yield from (
                    name.split(".")[0] for name in _SUB_NAME.findall(text) if name not in variables
                )
                yield from references(variables)
            else:
                yield from references(item)


def package(stage: str, out: Path) -> dict[str, Any]:
    """`chalice package` merged with infra/template.yaml, as infra.deploy makes it."""
    return json.loads(package_stage(stage, out).read_text())


def sam_transform(template: dict[str, Any], iam: Any) -> dict[str, Any]:
    """The real SAM transform (aws-sam-translator, what CloudFormation runs for `Transform:
    AWS::Serverless-2016-10-31`). CodeUri must be an S3 location, as infra.deploy's upload makes
    it; `iam` is only asked for AWS's managed policies if a function names one (none does)."""
    return transform(json.loads(json.dumps(template)), {}, ManagedPolicyLoader(iam))


def for_moto(transformed: dict[str, Any]) -> dict[str, Any]:
    """The transformed template with the two changes moto needs, and no more:

    - no AWS::ApiGateway::Deployment: moto's CloudFormation makes the REST API from its Name alone,
      without the OpenAPI Body's routes, and refuses to deploy an API that has no methods (the
      AWS::ApiGateway::Stage naming the deployment goes with it; moto skips stages anyway). The
      tests call the API in-process;
    - the SQS event source mapping created disabled: moto's runs the handler inside the S3 upload
      that notified the queue, before moto has stored the upload's Content-Type, so every photo
      would read as binary/octet-stream and be refused. The tests deliver the queue's messages
      to the handler themselves, after the upload (control_plane.deliver_upload_events).
    """
    result = json.loads(json.dumps(transformed))
    resources = result["Resources"]
    for name in [n for n, r in resources.items() if r["Type"] == "AWS::ApiGateway::Deployment"]:
        del resources[name]
    for resource in resources.values():
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            resource["Properties"]["Enabled"] = False
    removed = True
    while removed:
        removed = False
        for section in ("Resources", "Outputs"):
            for name, entry in list(result[section].items()):
                if any(
                    ref not in resources
                    and ref not in result["Parameters"]
                    and ref not in PSEUDO_PARAMETERS
                    for ref in references(entry)
                ):
                    del result[section][name]
                    removed = True
    return result


def put_alarms(
    session: Any, stack_name: str, template: dict[str, Any], parameters: dict[str, str]
) -> list[str]:
    """Each AWS::CloudWatch::Alarm of the template through PutMetricAlarm, resolved in the deployed
    stack (moto's CloudFormation has no alarms); their names. The properties are PutMetricAlarm's
    own arguments, so nothing is translated but the numbers CloudFormation passes as text."""
    cloudwatch, names = session.client("cloudwatch"), []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        alarm = resolve_in_stack(session, stack_name, template, parameters, resource["Properties"])
        for key, kind in (("Threshold", float), ("Period", int), ("EvaluationPeriods", int)):
            if key in alarm:
                alarm[key] = kind(alarm[key])
        cloudwatch.put_metric_alarm(**alarm)
        names.append(alarm["AlarmName"])
    return names
