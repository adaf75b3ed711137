"""Deploy a stage to AWS and take it down again, with boto3 only (no AWS CLI needed).

    python -m infra.deploy deploy --stage dev --worker-ami ami-…     # one stack: our resources +
                                                                     # Chalice's
    python -m infra.deploy deploy --stage dev --parameter WarmPoolSize=2 --parameter MinWorkers=1
    python -m infra.deploy destroy --stage dev                       # back to nothing
    python -m infra.deploy deploy-infra --stage dev --worker-ami …   # our resources only, for
                                                                     # `chalice deploy`
    python -m infra.deploy chalice-config --stage dev                # that stack's names into
                                                                     # .chalice/config.json
    python -m infra.deploy preflight                                 # credentials and region,
                                                                     # nothing else

`deploy` packages the stage with infra.merge, uploads the code and the template to the stage's
artifacts bucket (the template is over CloudFormation's 51,200-byte inline limit), creates or
updates the stack `<app>-<stage>` with waiters, makes the admin token, and prints the URL.
infra/README.md has the whole story, from an empty account to a URL and back.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from chalicelib.contract import ResourceNames, error_code
from chalicelib.scaling import LIVE_STATES, POOLED_STATES, worker_states

from .merge import CHALICE_APP, STAGE_THROTTLE_PARAMETERS, ChalicePackageError, package_stage
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
    "DeployError",
    "Stage",
    "create_or_update_stack",
    "ensure_admin_token",
    "ensure_artifacts_bucket",
    "parse_parameters",
    "powertools_layer_arn",
    "preflight",
    "teardown",
    "upload_package",
    "write_chalice_config",
]

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
ARTIFACT_DAYS = 30


class DeployError(RuntimeError):
    """Something the person deploying must fix; the message says what and how."""


@dataclass(frozen=True)
class Stage:
    """A stage and where it lives: the stack, its artifacts bucket and its admin token."""

    name: str
    prefix: str
    region: str
    account: str

    @classmethod
    def of(cls, name: str, region: str, account: str) -> Stage:
        return cls(name, configured_stage_prefix(name), region, account)

    @property
    def stack_name(self) -> str:
        return self.prefix

    @property
    def artifacts_bucket(self) -> str:
        # Bucket names are global: the account makes this one ours (as the stack's buckets).
        return f"{self.prefix}-artifacts-{self.account}"

    @property
    def admin_token_parameter(self) -> str:
        return ResourceNames(self.prefix, self.account).admin_token_parameter


# --- preflight ---------------------------------------------------------------------------------

_NO_CREDENTIALS = """\
No AWS credentials found. Configure them one of these ways, then run this again:
  aws configure                         # or: aws configure sso && export AWS_PROFILE=<profile>
  export AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=…   [AWS_SESSION_TOKEN=…]
The identity needs to create CloudFormation stacks with IAM roles (infra/README.md lists what)."""

_NO_REGION = """\
No AWS region set. Choose one, e.g.:
  export AWS_DEFAULT_REGION=us-east-1   # or: aws configure set region us-east-1"""

_NO_AMI = """\
No worker AMI given. Build one first (about 15 minutes, needs packer: make setup-system):
  make ami                              # writes out/worker-ami-id, which make deploy reads
or name an existing one: make deploy STAGE=dev WORKER_AMI=ami-0123456789abcdef0"""


def preflight(session: Any) -> tuple[str, str]:
    """(region, account) of working credentials, or DeployError with how to get them.

    Credentials and region are checked locally before the one call that proves them (STS).
    """
    if session.region_name is None:
        raise DeployError(_NO_REGION)
    if session.get_credentials() is None:
        raise DeployError(_NO_CREDENTIALS)
    try:
        identity = session.client("sts").get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        raise DeployError(f"The AWS credentials did not work ({exc}).\n{_NO_CREDENTIALS}") from exc
    return session.region_name, identity["Account"]


def worker_ami(given: str | None) -> str:
    """The AMI to launch workers from, or DeployError saying how to get one."""
    if not given:
        raise DeployError(_NO_AMI)
    return given


# --- artifacts ---------------------------------------------------------------------------------


def ensure_artifacts_bucket(s3: Any, stage: Stage) -> str:
    """The stage's private, encrypted bucket for code and templates (what `sam deploy` keeps
    too)."""
    bucket = stage.artifacts_bucket
    try:
        s3.head_bucket(Bucket=bucket)
        return bucket
    except ClientError as exc:
        # HEAD has no body to carry a code: a missing bucket is a bare 404.
        if error_code(exc) not in ("404", "NoSuchBucket"):
            raise
    location = (
        {}
        if stage.region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": stage.region}}
    )
    s3.create_bucket(Bucket=bucket, **location)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    # Every deploy adds a zip and a template; the stack needs them only while it creates or rolls
    # back.
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-old-packages",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": ARTIFACT_DAYS},
                }
            ]
        },
    )
    return bucket


def _put_by_content(s3: Any, bucket: str, name: str, body: bytes) -> str:
    """Store body under a key named by its hash: an unchanged upload is the same key."""
    key = f"{hashlib.sha256(body).hexdigest()[:20]}-{name}"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return key


def upload_package(s3: Any, region: str, bucket: str, package_dir: Path) -> str:
    """Upload deployment.zip and the template pointing at it; the template's URL for
    CloudFormation."""
    template = json.loads((package_dir / "sam.json").read_text(encoding="utf-8"))
    code_key = _put_by_content(
        s3, bucket, "deployment.zip", (package_dir / "deployment.zip").read_bytes()
    )
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": code_key}
    return template_url(
        region, bucket, _put_by_content(s3, bucket, "template.json", json.dumps(template).encode())
    )


def template_url(region: str, bucket: str, key: str) -> str:
    """The object's path-style S3 URL, as CloudFormation's TemplateURL wants it."""
    return f"https://s3.{region}.amazonaws.com/{bucket}/{key}"


# --- the stack ---------------------------------------------------------------------------------


def _stack_status(cfn: Any, stack_name: str) -> str | None:
    try:
        return cfn.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def create_or_update_stack(
    cfn: Any, stack_name: str, url: str, parameters: Mapping[str, str], delay_seconds: int = 10
) -> dict[str, str]:
    """Create the stack from the template at `url`, or update it; wait until it settles; return
    its outputs by key."""
    arguments = {
        "StackName": stack_name,
        "TemplateURL": url,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "Capabilities": CAPABILITIES,
    }
    status = _stack_status(cfn, stack_name)
    if status == "ROLLBACK_COMPLETE":
        # A first create that failed leaves a stack that can only be deleted.
        raise DeployError(
            f"stack {stack_name} failed to create earlier: run `make destroy` for its stage, then "
            "deploy again"
        )
    waiter_config = {"Delay": delay_seconds, "MaxAttempts": 3600 // delay_seconds}
    try:
        if status is None:
            cfn.create_stack(**arguments, OnFailure="ROLLBACK")
            cfn.get_waiter("stack_create_complete").wait(
                StackName=stack_name, WaiterConfig=waiter_config
            )
        else:
            try:
                cfn.update_stack(**arguments)
            except ClientError as exc:
                if "No updates are to be performed" not in str(exc):
                    raise
            else:
                cfn.get_waiter("stack_update_complete").wait(
                    StackName=stack_name, WaiterConfig=waiter_config
                )
    except (ClientError, WaiterError) as exc:
        raise DeployError(
            f"stack {stack_name} did not deploy: {exc}\n{_failure_events(cfn, stack_name)}"
        ) from exc
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def _failure_events(cfn: Any, stack_name: str) -> str:
    """The stack's failed resources and why, newest first: what a person needs to fix it."""
    try:
        events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
    except ClientError:
        return ""
    failed = [e for e in events if e.get("ResourceStatus", "").endswith("FAILED")][:10]
    return "\n".join(
        f"  {e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}" for e in failed
    )


def ensure_admin_token(ssm: Any, stage: Stage) -> bool:
    """A random admin token as a SecureString, unless one exists; True when it was made now."""
    try:
        ssm.put_parameter(
            Name=stage.admin_token_parameter,
            Value=secrets.token_urlsafe(32),
            Type="SecureString",
            Overwrite=False,
            Description=f"X-Admin-Token for {stage.prefix}'s gallery routes",
        )
    except ssm.exceptions.ParameterAlreadyExists:
        return False
    return True


def stack_parameters(stage: Stage, ami: str, extra: Mapping[str, str]) -> dict[str, str]:
    return {"StagePrefix": stage.prefix, "WorkerImageId": ami, **extra}


def parse_parameters(given: list[str], template: Mapping[str, Any] | None = None) -> dict[str, str]:
    """`NAME=VALUE` pairs (--parameter) as stack parameters; NAME must be one of the template's
    (infra/template.yaml, infra/README.md for what each does) or the merged stack's throttle, other
    than those deploy sets itself."""
    known = (set((template or load_template())["Parameters"]) | set(STAGE_THROTTLE_PARAMETERS)) - {
        "StagePrefix",
        "WorkerImageId",
        "ScaleUpFunctionArn",
    }
    parameters = {}
    for pair in given:
        name, equals, value = pair.partition("=")
        if not equals or name.strip() not in known:
            raise DeployError(
                f"--parameter {pair!r}: expected NAME=VALUE with NAME one of "
                f"{', '.join(sorted(known))}"
            )
        parameters[name.strip()] = value.strip()
    return parameters


# --- `chalice deploy` against the infra stack ------------------------------------------------


def powertools_layer_arn(session: Any) -> str:
    """The region's Powertools layer at the pinned version, from AWS's public parameter."""
    return session.client("ssm").get_parameter(Name=POWERTOOLS_LAYER_PARAMETER)["Parameter"][
        "Value"
    ]


def write_chalice_config(
    stage: Stage,
    outputs: Mapping[str, str],
    powertools_layer: str,
    config_path: Path = CHALICE_CONFIG,
) -> None:
    """The stage's names, roles and scaling settings (from the infra stack's outputs) and the
    region's Powertools layer into .chalice/config.json.

    Only the `chalice deploy` path needs this: the values are this account's, so they are
    written at deploy time rather than committed.
    """
    config = json.loads(config_path.read_text(encoding="utf-8"))
    block = config["stages"].setdefault(stage.name, {})
    block["layers"] = [powertools_layer]
    environment = block.setdefault("environment_variables", {})
    environment.update({name: outputs[key] for name, key in APP_ENVIRONMENT.items()})
    environment.update(
        {
            "FACEREC_STAGE_PREFIX": stage.prefix,
            "FACEREC_ADMIN_TOKEN_PARAMETER": stage.admin_token_parameter,
        }
    )
    environment.update({name: outputs[key] for name, key in SCALING_ENVIRONMENT.items()})
    functions = block.setdefault("lambda_functions", {})
    for function in FUNCTIONS:
        functions.setdefault(function.name, {})["iam_role_arn"] = outputs[f"{function.role}Arn"]
    block["iam_role_arn"] = outputs[f"{FUNCTIONS[0].role}Arn"]
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def scale_up_arn(stage: Stage, partition: str = "aws") -> str:
    """Where `chalice deploy` puts scale_up: Chalice names it <app>-<stage>-scale_up."""
    name = next(f for f in FUNCTIONS if f.name == "scale_up").function_name(stage.prefix)
    return f"arn:{partition}:lambda:{stage.region}:{stage.account}:function:{name}"


# --- teardown ----------------------------------------------------------------------------------


def _empty_bucket(s3: Any, bucket: str) -> None:
    """Every object and every version (versioned or not): CloudFormation deletes only empty
    buckets."""
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            objects = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if objects:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    except s3.exceptions.NoSuchBucket:
        pass


def _terminate_workers(ec2: Any, stage: Stage, delay_seconds: int) -> None:
    """Workers still running would outlive their role and keep costing: end them and wait."""
    # The scaler's own listing (paginated): live workers, and stopped ones in the warm pool.
    ids = [
        i
        for i, state in worker_states(ec2, stage.prefix).items()
        if state in (*LIVE_STATES, *POOLED_STATES)
    ]
    if ids:
        print(f"terminating {len(ids)} worker(s)")
        ec2.terminate_instances(InstanceIds=ids)
        ec2.get_waiter("instance_terminated").wait(
            InstanceIds=ids, WaiterConfig={"Delay": delay_seconds}
        )


def teardown(session: Any, stage: Stage, delay_seconds: int = 10) -> None:
    """Delete everything the stage made: workers, bucket contents, the stack, the token, the
    functions' log groups (the stack's, but a function still running as the stack goes makes its
    group again, with no retention) and the artifacts bucket.

    Workers go first, so none writes into a bucket being emptied; running it again finishes
    whatever an interrupted run left."""
    cfn, s3 = session.client("cloudformation"), session.client("s3")
    _terminate_workers(session.client("ec2"), stage, delay_seconds)
    if _stack_status(cfn, stage.stack_name) is not None:
        for resource in cfn.describe_stack_resources(StackName=stage.stack_name)["StackResources"]:
            if resource.get("ResourceType") == "AWS::S3::Bucket" and resource.get(
                "PhysicalResourceId"
            ):
                _empty_bucket(s3, resource["PhysicalResourceId"])
        cfn.delete_stack(StackName=stage.stack_name)
        cfn.get_waiter("stack_delete_complete").wait(
            StackName=stage.stack_name,
            WaiterConfig={"Delay": delay_seconds, "MaxAttempts": 3600 // delay_seconds},
        )
        # The one-minute scale-up may have launched one more while the stack was going; now
        # nothing can launch any more.
        _terminate_workers(session.client("ec2"), stage, delay_seconds)
    ssm = session.client("ssm")
    try:
        ssm.delete_parameter(Name=stage.admin_token_parameter)
    except ssm.exceptions.ParameterNotFound:
        pass
    logs = session.client("logs")
    for page in logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=f"/aws/lambda/{stage.prefix}"
    ):
        for group in page["logGroups"]:
            name = group["logGroupName"].removeprefix("/aws/lambda/")
            if name == stage.prefix or name.startswith(stage.prefix + "-"):
                logs.delete_log_group(logGroupName=group["logGroupName"])
    _empty_bucket(s3, stage.artifacts_bucket)
    try:
        s3.delete_bucket(Bucket=stage.artifacts_bucket)
    except s3.exceptions.NoSuchBucket:
        pass


# --- commands ----------------------------------------------------------------------------------


def _chalice(*args: str) -> None:
    command = [
        str(Path(sys.executable).with_name("chalice")),
        "--project-dir",
        str(CHALICE_APP),
        *args,
    ]
    print("$", " ".join(command[2:]))
    if subprocess.run(command).returncode != 0:
        raise DeployError(f"`chalice {' '.join(args)}` failed (its output is above)")


def _print_outputs(outputs: Mapping[str, str], stage: Stage, token_made: bool) -> None:
    for key in sorted(outputs):
        print(f"  {key:28} {outputs[key]}")
    if "EndpointURL" in outputs:
        print(f"\nAPI:      {outputs['EndpointURL']}\nweb page: {outputs['EndpointURL']}app")
    made = "made now" if token_made else "kept"
    print(
        f"admin token ({made}): aws ssm get-parameter --name {stage.admin_token_parameter} "
        f"--with-decryption --query Parameter.Value --output text"
    )
    # The key's value is API Gateway's to make; it is read, never printed into a log here.
    print(
        f"API key (X-Api-Key): aws apigateway get-api-keys --name-query {stage.prefix}-default "
        f"--include-values --query 'items[0].value' --output text"
    )


def deploy(
    session: Any, stage: Stage, ami: str, extra: Mapping[str, str], infra_only: bool
) -> dict[str, str]:
    s3 = session.client("s3")
    bucket = ensure_artifacts_bucket(s3, stage)
    parameters = stack_parameters(stage, ami, extra)
    if infra_only:
        parameters["ScaleUpFunctionArn"] = scale_up_arn(stage)
        body = json.dumps(package_template(load_template())).encode()
        url = template_url(stage.region, bucket, _put_by_content(s3, bucket, "infra.json", body))
    else:
        package_dir = package_stage(stage.name, ROOT / "out" / "deploy" / stage.name, stage.region)
        url = upload_package(s3, stage.region, bucket, package_dir)
    print(
        f"deploying stack {stage.stack_name} in {stage.region} (a first deploy takes a few minutes)"
    )
    outputs = create_or_update_stack(
        session.client("cloudformation"), stage.stack_name, url, parameters
    )
    _print_outputs(outputs, stage, ensure_admin_token(session.client("ssm"), stage))
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.deploy", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "command", choices=["deploy", "deploy-infra", "chalice-config", "destroy", "preflight"]
    )
    parser.add_argument("--stage", default="dev")
    parser.add_argument(
        "--worker-ami",
        default=None,
        help="the AMI `make ami` built (make deploy reads out/worker-ami-id)",
    )
    parser.add_argument("--worker-instance-type", default=None)
    parser.add_argument(
        "--cors-origin", default=None, help="the web origin allowed to upload from a browser"
    )
    parser.add_argument(
        "--alarm-email",
        default=None,
        help="an address the stage's alarms mail (it must confirm the subscription)",
    )
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=(
            "any other stack parameter, e.g. WarmPoolSize=2 "
            "(infra/README.md lists them); repeatable"
        ),
    )
    args = parser.parse_args(argv)
    try:
        # The AMI and the parameters first: a mistake is said before anything is asked of AWS.
        ami = worker_ami(args.worker_ami) if args.command in ("deploy", "deploy-infra") else ""
        extra = parse_parameters(args.parameter)
        extra.update(
            (key, value)
            for key, value in (
                ("WorkerInstanceType", args.worker_instance_type),
                ("CorsAllowedOrigin", args.cors_origin),
                ("AlarmEmail", args.alarm_email),
            )
            if value
        )
        session = boto3.session.Session()
        region, account = preflight(session)
        if args.command == "preflight":
            print(f"AWS account {account}, region {region}: ready")
            return 0
        stage = Stage.of(args.stage, region, account)
        if args.command in ("deploy", "deploy-infra"):
            outputs = deploy(session, stage, ami, extra, infra_only=args.command == "deploy-infra")
            if args.command == "deploy-infra":
                write_chalice_config(stage, outputs, powertools_layer_arn(session))
                print(
                    f"\nwrote stage {stage.name} into {CHALICE_CONFIG.relative_to(ROOT)}; "
                    f"now: cd chalice_app && chalice deploy --stage {stage.name}"
                )
        elif args.command == "chalice-config":
            cfn = session.client("cloudformation")
            stack = cfn.describe_stacks(StackName=stage.stack_name)["Stacks"][0]
            write_chalice_config(
                stage,
                {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
                powertools_layer_arn(session),
            )
        elif args.command == "destroy":
            if (CHALICE_APP / ".chalice" / "deployed" / f"{stage.name}.json").is_file():
                _chalice("delete", "--stage", stage.name)
            teardown(session, stage)
            print(
                f"stage {stage.name} is gone: stack {stage.stack_name}, its buckets' contents, "
                "workers, token, logs, artifacts"
            )
    except (DeployError, ChalicePackageError, ClientError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
