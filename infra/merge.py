"""One template for a stage: `chalice package` (the functions, the API) merged with ours.

    python -m infra.merge --stage dev --out out/deploy/dev    # writes sam.json and deployment.zip

`chalice package --merge-template` deep-merges a document into the template Chalice writes. Ours
is infra/template.yaml, packaged (the workflow rendered in), with these changes that wire the two
halves together inside the one stack:

- the `ScaleUpFunctionArn` parameter becomes `!GetAtt ScaleUp.Arn`, Chalice's scale_up function;
- each function gets its role from our template, the name `chalice deploy` would give it, and
  every FACEREC_* variable as a reference to the resource (names live in the stack, nowhere else),
  and the fleet's scaling settings as references to the stack's parameters (SCALING_ENVIRONMENT).
  The state machine's ARN is spelled from its name instead: a reference would close a cycle
  (workflow → its role → scale_up → scale_up's environment → workflow);
- each function runs with AWS's Powertools layer (`PowertoolsLayerArn`, resolved from the public
  SSM parameter infra.names names), which the functions' JSON logs and metrics import: the
  functions' own bundle stays app.py and chalicelib, needing nothing beyond Lambda's runtime;
- the REST API is named for the stage, and API Gateway's own refusals have the API's error shape;
- callers are limited (chalicelib.callers): the stage throttles every caller together
  (STAGE_THROTTLE_PARAMETERS), and the template's usage plan, each API key's limits, is attached to
  the API's stage; a refused key, throttled burst or spent quota says what to do in its message.
- `StagePrefix` may only be the stage's own prefix: Chalice wrote the upload-events queue's name
  (from that prefix) into the SQS event source. That source keeps Chalice's Fn::Sub ARN (a merge
  cannot swap it for a Fn::GetAtt); the function's role names the queue by reference, so the queue
  is still created first.

Chalice runs on a copy of chalice_app/ whose config sets each function's `iam_role_arn` to the
logical id of its role: Chalice needs some role when `manage_iam_role` is false, and the merge
replaces the value with a `Fn::GetAtt`; tests/test_deploy_package.py checks none is left.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import Any

from chalicelib.callers import KEY_MISSING_MESSAGE, QUOTA_MESSAGE, THROTTLED_MESSAGE

from .names import (
    APP_ENVIRONMENT,
    CHALICE_CONFIG,
    FUNCTIONS,
    POWERTOOLS_LAYER_PARAMETER,
    SCALING_ENVIRONMENT,
    configured_stage_prefix,
)
from .stack import ROOT, load_template, package_template

__all__ = [
    "STAGE_THROTTLE_PARAMETERS",
    "ChalicePackageError",
    "build_merge_template",
    "chalice_package",
    "package_stage",
]

CHALICE_APP = ROOT / "chalice_app"
_SCALE_UP_PARAMETER = "ScaleUpFunctionArn"
# Chalice's scale_up function, by the logical id `chalice package` gives it.
_SCALE_UP_ARN = {"Fn::GetAtt": ["ScaleUp", "Arn"]}
_POWERTOOLS_LAYER = "PowertoolsLayerArn"
# The stage's throttle for all callers together (keys, the web page, an open seed route): what
# the account pays for at most, whatever the keys' own limits add up to. Parameters of the merged
# stack only, as the API is; infra.deploy takes them like the template's.
STAGE_THROTTLE_PARAMETERS = MappingProxyType(
    {
        "ApiStageRateLimit": {
            "Type": "Number",
            "Default": 100,
            "MinValue": 1,
            "Description": (
                "Requests a second the whole API takes, steadily, before API Gateway answers 429."
            ),
        },
        "ApiStageBurstLimit": {
            "Type": "Number",
            "Default": 200,
            "MinValue": 1,
            "Description": "Requests the whole API takes at once.",
        },
    }
)
# What a throttled client is told to wait: API Gateway's buckets refill every second.
_THROTTLED_RETRY_AFTER = "'1'"
# What `chalice package` reads from chalice_app/ (config.json is written, not copied).
_COPIED = ("app.py", "chalicelib", "requirements.txt")


class ChalicePackageError(RuntimeError):
    """`chalice package` failed; the message carries its output."""


def _replace_ref(value: Any, name: str, replacement: Any) -> Any:
    if isinstance(value, list):
        return [_replace_ref(item, name, replacement) for item in value]
    if isinstance(value, dict):
        if value == {"Ref": name}:
            return replacement
        return {key: _replace_ref(item, name, replacement) for key, item in value.items()}
    return value


def _function_overrides(template: dict[str, Any]) -> dict[str, Any]:
    """Role, name and environment for each of Chalice's functions, by its logical id."""
    outputs = template["Outputs"]
    variables = {name: outputs[output]["Value"] for name, output in APP_ENVIRONMENT.items()}
    machine_name = template["Resources"]["JobWorkflow"]["Properties"]["StateMachineName"]["Fn::Sub"]
    variables["FACEREC_STATE_MACHINE_ARN"] = {
        "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:"
        + machine_name
    }
    variables["FACEREC_STAGE_PREFIX"] = {"Ref": "StagePrefix"}
    variables["FACEREC_ADMIN_TOKEN_PARAMETER"] = outputs["AdminTokenParameterName"]["Value"]
    variables.update(
        {name: outputs[output]["Value"] for name, output in SCALING_ENVIRONMENT.items()}
    )
    overrides: dict[str, Any] = {}
    for function in FUNCTIONS:
        properties: dict[str, Any] = {
            "FunctionName": {"Fn::Sub": "${StagePrefix}" + function.suffix},
            "Role": {"Fn::GetAtt": [function.role, "Arn"]},
            "Environment": {"Variables": variables},
            "Layers": [{"Ref": _POWERTOOLS_LAYER}],
        }
        overrides[function.logical_id] = {"Properties": properties}
    return overrides


def build_merge_template(prefix: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The document to pass to `chalice package --merge-template` for the stage named `prefix`."""
    template = json.loads(json.dumps(template or load_template()))
    del template["Parameters"][_SCALE_UP_PARAMETER]
    # Chalice wrote the upload-events queue's name into the SQS source from the stage's prefix:
    # the stack may be deployed with that prefix only.
    template["Parameters"]["StagePrefix"].update({"Default": prefix, "AllowedValues": [prefix]})
    template["Parameters"][_POWERTOOLS_LAYER] = {
        "Type": "AWS::SSM::Parameter::Value<String>",
        "Default": POWERTOOLS_LAYER_PARAMETER,
        "Description": (
            "The SSM parameter naming the Powertools layer the functions run with (AWS's own)."
        ),
    }
    merged = package_template(_replace_ref(template, _SCALE_UP_PARAMETER, _SCALE_UP_ARN))
    merged["Resources"].update(_function_overrides(merged))
    merged["Resources"]["RestAPI"] = {
        "Properties": {
            # Named for the stage rather than by its OpenAPI title (the app's name, the same for
            # every stage); moto's CloudFormation needs a Name too, to make the API at all.
            "Name": {"Fn::Sub": "${StagePrefix}"},
            "GatewayResponses": _gateway_responses(),
            "MethodSettings": [
                {
                    "ResourcePath": "/*",
                    "HttpMethod": "*",
                    "ThrottlingRateLimit": {"Ref": "ApiStageRateLimit"},
                    "ThrottlingBurstLimit": {"Ref": "ApiStageBurstLimit"},
                }
            ],
        }
    }
    merged["Parameters"].update(
        {name: dict(spec) for name, spec in STAGE_THROTTLE_PARAMETERS.items()}
    )
    # SAM's `<api>.Stage` names the stage it makes, and makes the plan wait for it.
    merged["Resources"]["ApiUsagePlan"]["Properties"]["ApiStages"] = [
        {"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}
    ]
    merged["Outputs"]["WebPageURL"] = {
        "Description": "The web page: recognize photos, enroll people.",
        "Value": {
            "Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api/app"
        },
    }
    return merged


def _gateway_responses() -> dict[str, Any]:
    """API Gateway's own refusals (an unknown route, a body too large, a throttled burst) in the
    shape of every other refusal of the API: `{"error", "message"}`. SAM writes them into the
    API's OpenAPI body: as resources of their own, the next import of that body would drop them
    (cfn-lint's W3660 on the transformed template)."""
    template = '{"error": "$context.error.responseType", "message": $context.error.messageString}'
    responses: dict[str, Any] = {
        kind: {"ResponseTemplates": {"application/json": template}}
        for kind in ("DEFAULT_4XX", "DEFAULT_5XX")
    }
    # The caller's refusals (chalicelib.callers) say what to send or how long to wait, as the
    # local gateway's do.
    for kind, error, message in (
        ("INVALID_API_KEY", "Forbidden", KEY_MISSING_MESSAGE),
        ("THROTTLED", "TooManyRequests", THROTTLED_MESSAGE),
        ("QUOTA_EXCEEDED", "QuotaExceeded", QUOTA_MESSAGE),
    ):
        responses[kind] = {
            "ResponseTemplates": {
                "application/json": json.dumps({"error": error, "message": message})
            }
        }
    responses["THROTTLED"]["ResponseParameters"] = {
        "Headers": {"Retry-After": _THROTTLED_RETRY_AFTER}
    }
    return responses


def _project_copy(stage: str, destination: Path) -> Path:
    """chalice_app/ without caches or deployment state, each function's role set to its logical
    id."""
    project = destination / "chalice_app"
    project.mkdir(parents=True)
    for name in _COPIED:
        source = CHALICE_APP / name
        if source.is_dir():
            shutil.copytree(
                source, project / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy2(source, project / name)
    config = json.loads(CHALICE_CONFIG.read_text(encoding="utf-8"))
    if stage not in config["stages"]:
        raise ChalicePackageError(
            f"no stage {stage!r} in {CHALICE_CONFIG} (it has {sorted(config['stages'])})"
        )
    stage_config = config["stages"][stage]
    functions = stage_config.setdefault("lambda_functions", {})
    for function in FUNCTIONS:
        functions.setdefault(function.name, {})["iam_role_arn"] = function.role
    stage_config["iam_role_arn"] = FUNCTIONS[0].role
    (project / ".chalice").mkdir()
    (project / ".chalice" / "config.json").write_text(
        json.dumps(config, indent=2), encoding="utf-8"
    )
    return project


def chalice_package(
    stage: str, merge_template: Path, out_dir: Path, region: str = "us-east-1"
) -> Path:
    """Run `chalice package --merge-template` for `stage` into out_dir; returns out_dir/sam.json."""
    chalice = Path(sys.executable).with_name("chalice")
    with tempfile.TemporaryDirectory(prefix="facerec-package-") as scratch:
        project = _project_copy(stage, Path(scratch))
        shutil.rmtree(out_dir, ignore_errors=True)
        done = subprocess.run(
            [
                str(chalice),
                "--project-dir",
                str(project),
                "package",
                "--stage",
                stage,
                "--merge-template",
                str(merge_template),
                str(out_dir.resolve()),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            # Chalice wants a region to name the package; nothing here calls AWS.
            env={**os.environ, "AWS_DEFAULT_REGION": region},
        )
    if done.returncode != 0:
        raise ChalicePackageError(f"chalice package failed:\n{done.stdout}{done.stderr}")
    return out_dir / "sam.json"


def package_stage(stage: str, out_dir: Path, region: str = "us-east-1") -> Path:
    """The stage's merged template (sam.json) and code (deployment.zip) in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    merge_path = out_dir.parent / f"{out_dir.name}.merge.json"
    merge_path.write_text(
        json.dumps(build_merge_template(configured_stage_prefix(stage)), indent=2), encoding="utf-8"
    )
    return chalice_package(stage, merge_path, out_dir, region)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.merge", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", type=Path, default=None, help="default: out/deploy/<stage>")
    args = parser.parse_args(argv)
    out = args.out or ROOT / "out" / "deploy" / args.stage
    print(package_stage(args.stage, out))
    print(f"stage prefix: {configured_stage_prefix(args.stage)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
