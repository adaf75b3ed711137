"""Reading CloudFormation templates in tests: what a template refers to, and the part of SAM's
transform moto lacks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from infra.merge import package_stage

PSEUDO_PARAMETERS = frozenset({"AWS::AccountId", "AWS::Partition", "AWS::Region", "AWS::StackName", "AWS::URLSuffix", "AWS::NoValue"})
_SUB_NAME = re.compile(r"\$\{([^!][^}]*)\}")


def references(value: Any) -> Iterator[str]:
    """Every logical id or parameter that `value` refers to: Ref, GetAtt, and names in Fn::Sub."""
    if isinstance(value, list):
        for item in value:
            yield from references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref":
                yield item
            elif key == "Fn::GetAtt":
                yield item[0] if isinstance(item, list) else item.split(".")[0]
            elif key == "Fn::Sub":
                text, variables = (item, {}) if isinstance(item, str) else (item[0], item[1])
                yield from (name.split(".")[0] for name in _SUB_NAME.findall(text) if name not in variables)
                yield from references(variables)
            else:
                yield from references(item)


def package(stage: str, out: Path) -> dict[str, Any]:
    """`chalice package` merged with infra/template.yaml, as infra.deploy makes it."""
    return json.loads(package_stage(stage, out).read_text())


def without_sam(template: dict[str, Any], code_bucket: str, code_key: str) -> dict[str, Any]:
    """The packaged template as moto can deploy it: each AWS::Serverless::Function becomes the
    AWS::Lambda::Function SAM would make of it (code from the uploaded zip), and what moto cannot
    run without Docker or API Gateway (the REST API, its permission, event sources) is left out."""
    result = json.loads(json.dumps(template))
    result.pop("Transform")
    resources = result["Resources"]
    for name, resource in list(resources.items()):
        if resource["Type"] == "AWS::Serverless::Function":
            properties = resource["Properties"]
            resources[name] = {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    **{key: properties[key] for key in ("FunctionName", "Role", "Handler", "Runtime", "Timeout", "MemorySize", "Environment")},
                    "Code": {"S3Bucket": code_bucket, "S3Key": code_key},
                },
            }
        elif resource["Type"].startswith("AWS::Serverless::"):
            del resources[name]
    removed = True
    while removed:
        removed = False
        for section in ("Resources", "Outputs"):
            for name, entry in list(result[section].items()):
                if any(ref not in resources and ref not in result["Parameters"] and ref not in PSEUDO_PARAMETERS for ref in references(entry)):
                    del result[section][name]
                    removed = True
    return result
