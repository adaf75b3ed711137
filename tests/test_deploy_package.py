"""What `make deploy` ships, checked offline: `chalice package` merged with infra/template.yaml is
one valid template whose parts refer to each other, and the `chalice deploy` path's config works."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator
from deploy_support import PSEUDO_PARAMETERS, package, references, sam_transform

from chalicelib.callers import KEY_MISSING_MESSAGE
from chalicelib.config import Settings
from infra.deploy import DeployError, Stage, parse_parameters, write_chalice_config
from infra.names import (
    APP_ENVIRONMENT,
    CHALICE_CONFIG,
    FUNCTIONS,
    POWERTOOLS_LAYER_PARAMETER,
    SCALING_ENVIRONMENT,
    configured_stage_prefix,
)
from infra.stack import load_template
from local_service.gateway import UsagePlanLimits

ROOT = Path(__file__).resolve().parent.parent
STAGES = sorted(json.loads(CHALICE_CONFIG.read_text())["stages"])


@pytest.fixture(scope="module", params=STAGES)
def packaged(request, tmp_path_factory) -> tuple[str, Path, dict]:
    """(stage, package dir, merged template), made by `chalice package --merge-template` offline."""
    out = tmp_path_factory.mktemp("package") / request.param
    return request.param, out, package(request.param, out)


def test_config_has_the_stages_and_hand_written_iam():
    config = json.loads(CHALICE_CONFIG.read_text())
    assert {"dev", "prod"} <= set(config["stages"])
    assert config["autogen_policy"] is False and config["manage_iam_role"] is False
    for stage, block in config["stages"].items():
        assert block["environment_variables"]["FACEREC_STAGE_PREFIX"] == configured_stage_prefix(
            stage
        )
        assert set(block["lambda_functions"]) == {f.name for f in FUNCTIONS}


def test_the_lambda_requirements_are_only_what_the_runtime_lacks():
    lines = [
        line
        for line in (ROOT / "chalice_app" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # boto3 is in Lambda's runtime, Powertools in AWS's layer the functions run with; chalicelib
    # imports nothing else.
    assert lines == []


def test_the_package_has_our_resources_and_chalices_functions(packaged):
    _stage, out, merged = packaged
    with zipfile.ZipFile(out / "deployment.zip") as code:
        names = set(code.namelist())
    # What the functions run and nothing more: the app, chalicelib's sources and web page, and the
    # two files of Chalice's runtime it vendors; no dependencies (requirements.txt is empty).
    library = ROOT / "chalice_app" / "chalicelib"
    sources = {
        f"chalicelib/{p.relative_to(library).as_posix()}"
        for p in library.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert names == {"app.py", "chalice/__init__.py", "chalice/app.py"} | sources
    assert {"chalicelib/contract/__init__.py", "chalicelib/web/index.html"} <= names
    ours = set(load_template()["Resources"])
    chalice = {f.logical_id for f in FUNCTIONS} | {"RestAPI"}
    assert ours | chalice <= set(merged["Resources"])
    assert {"EndpointURL", "WebPageURL"} | set(load_template()["Outputs"]) <= set(merged["Outputs"])
    # No role of Chalice's own: every function runs as the role our template gives it.
    roles = {name for name, r in merged["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert roles == {
        name for name, r in load_template()["Resources"].items() if r["Type"] == "AWS::IAM::Role"
    }


def test_api_gateways_own_refusals_have_the_apis_error_shape(packaged):
    _, _, merged = packaged
    api = merged["Resources"]["RestAPI"]
    assert api["Type"] == "AWS::Serverless::Api" and api["Properties"]["Name"] == {
        "Fn::Sub": "${StagePrefix}"
    }
    responses = api["Properties"]["GatewayResponses"]
    assert set(responses) == {
        "DEFAULT_4XX",
        "DEFAULT_5XX",
        "INVALID_API_KEY",
        "THROTTLED",
        "QUOTA_EXCEEDED",
    }
    for response in responses.values():
        template = response["ResponseTemplates"]["application/json"]
        assert '"error":' in template and '"message":' in template
    # The caller's refusals say what to send, or when to come back, as the local gateway's do.
    assert (
        json.loads(responses["INVALID_API_KEY"]["ResponseTemplates"]["application/json"])["message"]
        == KEY_MISSING_MESSAGE
    )
    assert responses["THROTTLED"]["ResponseParameters"]["Headers"]["Retry-After"] == "'1'"


# The recognition routes, by their OpenAPI path and method.
RECOGNITION_ROUTES = {
    ("/jobs", "post"),
    ("/jobs/{job_id}", "get"),
    ("/batches", "post"),
    ("/batches/{batch_id}/start", "post"),
    ("/batches/{batch_id}", "get"),
}


def test_recognition_needs_an_api_key_and_the_seed_route_one_unless_the_stage_opens_it(packaged):
    stage, _, merged = packaged
    paths = merged["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    keyed = {
        (path, method)
        for path, methods in paths.items()
        for method, operation in methods.items()
        if isinstance(operation, dict) and {"api_key": []} in operation.get("security", [])
    }
    stage_environment = json.loads(CHALICE_CONFIG.read_text())["stages"][stage].get(
        "environment_variables", {}
    )
    seed_open = Settings.from_env(stage_environment).open_seed_route
    assert keyed == RECOGNITION_ROUTES | (set() if seed_open else {("/", "post")})


def test_the_stage_throttles_every_caller_and_each_key_has_a_usage_plan_with_a_daily_quota(
    packaged,
):
    _, _, merged = packaged
    parameters = merged["Parameters"]
    (throttle,) = merged["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert (throttle["ResourcePath"], throttle["HttpMethod"]) == ("/*", "*")
    assert throttle["ThrottlingRateLimit"] == {"Ref": "ApiStageRateLimit"} and throttle[
        "ThrottlingBurstLimit"
    ] == {"Ref": "ApiStageBurstLimit"}
    assert (
        parameters["ApiStageRateLimit"]["Default"] > 0
        and parameters["ApiStageBurstLimit"]["Default"] > 0
    )
    plan = merged["Resources"]["ApiUsagePlan"]
    assert plan["Type"] == "AWS::ApiGateway::UsagePlan"
    properties = plan["Properties"]
    assert properties["Throttle"] == {
        "RateLimit": {"Ref": "ApiKeyRateLimit"},
        "BurstLimit": {"Ref": "ApiKeyBurstLimit"},
    }
    assert properties["Quota"] == {"Limit": {"Ref": "ApiKeyDailyQuota"}, "Period": "DAY"}
    assert properties["ApiStages"] == [
        {"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}
    ]
    # The local gateway's limits are these parameters' defaults: one place for both.
    limits = UsagePlanLimits.from_template(merged)
    assert (limits.rate_per_second, limits.burst, limits.daily_quota) == tuple(
        parameters[name]["Default"]
        for name in ("ApiKeyRateLimit", "ApiKeyBurstLimit", "ApiKeyDailyQuota")
    )
    key = merged["Resources"]["DefaultApiKeyInPlan"]
    assert key["Type"] == "AWS::ApiGateway::UsagePlanKey"
    assert key["Properties"] == {
        "KeyId": {"Ref": "DefaultApiKey"},
        "KeyType": "API_KEY",
        "UsagePlanId": {"Ref": "ApiUsagePlan"},
    }
    # Through SAM's transform, the plan names the stage SAM makes, which carries the throttle.
    transformed = sam_transform(_uploaded(merged), boto3.client("iam", region_name="us-east-1"))[
        "Resources"
    ]
    (api_stage,) = transformed["ApiUsagePlan"]["Properties"]["ApiStages"]
    stage_resource = transformed[api_stage["Stage"]["Ref"]]
    assert stage_resource["Type"] == "AWS::ApiGateway::Stage"
    assert stage_resource["Properties"]["MethodSettings"] == [throttle]


def test_each_function_has_reserved_concurrency(packaged):
    """A flood of one route cannot take the account's concurrency from the upload events and
    scale-up."""
    _, _, merged = packaged
    reserved = {
        f.name: merged["Resources"][f.logical_id]["Properties"].get("ReservedConcurrentExecutions")
        for f in FUNCTIONS
    }
    assert all(isinstance(n, int) and n > 0 for n in reserved.values()), reserved
    # AWS keeps 100 of an account's default 1,000 unreserved.
    assert sum(reserved.values()) <= 900


def test_a_monthly_budget_warns_the_alarm_topic(packaged):
    _, _, merged = packaged
    resources = merged["Resources"]
    budget = resources["MonthlyBudget"]
    assert budget["Type"] == "AWS::Budgets::Budget"
    limit = budget["Properties"]["Budget"]["BudgetLimit"]
    assert (
        limit == {"Amount": {"Ref": "MonthlyBudgetUsd"}, "Unit": "USD"}
        and merged["Parameters"]["MonthlyBudgetUsd"]["Default"] > 0
    )
    notifications = budget["Properties"]["NotificationsWithSubscribers"]
    assert {n["Notification"]["NotificationType"] for n in notifications} == {
        "ACTUAL",
        "FORECASTED",
    }
    for notification in notifications:
        assert notification["Subscribers"] == [
            {"SubscriptionType": "SNS", "Address": {"Ref": "AlarmTopic"}}
        ]
    # Budgets may publish to the topic, which mails AlarmEmail when one is given.
    (statement,) = resources["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (
        statement["Principal"] == {"Service": "budgets.amazonaws.com"}
        and statement["Action"] == "sns:Publish"
    )
    assert resources["AlarmEmailSubscription"]["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


def test_every_reference_in_the_package_resolves(packaged):
    _, _, merged = packaged
    known = set(merged["Resources"]) | set(merged["Parameters"]) | PSEUDO_PARAMETERS
    dangling = {
        ref for section in ("Resources", "Outputs") for ref in references(merged[section])
    } - known
    assert not dangling


def test_the_functions_get_their_roles_names_and_every_resource_name(packaged):
    _stage, _, merged = packaged
    variables = None
    for function in FUNCTIONS:
        properties = merged["Resources"][function.logical_id]["Properties"]
        assert properties["Role"] == {"Fn::GetAtt": [function.role, "Arn"]}
        assert properties["FunctionName"] == {"Fn::Sub": "${StagePrefix}" + function.suffix}
        variables = properties["Environment"]["Variables"]
        assert not [
            v for v in variables.values() if isinstance(v, str) and v.startswith("facerec-")
        ], "a hand-copied name"
    names = set(APP_ENVIRONMENT) | {"FACEREC_STAGE_PREFIX", "FACEREC_ADMIN_TOKEN_PARAMETER"}
    assert names <= set(variables)
    # Every name Settings reads that names a resource is set by the stack.
    read = {
        name
        for field in dataclasses.fields(Settings)
        for name in field.metadata["variables"]
        if name.startswith("FACEREC_")
    }
    resource_names = {
        n
        for n in read
        if n.endswith(
            (
                "_BUCKET",
                "_TABLE",
                "_QUEUE",
                "_QUEUE_URL",
                "_ARN",
                "_TEMPLATE",
                "_PREFIX",
                "_PARAMETER",
            )
        )
    }
    assert resource_names <= set(variables)


def test_the_functions_get_the_fleets_scaling_settings_from_the_stacks_parameters(packaged):
    """Each scaling variable refers to its parameter, whose default is the setting's own default:
    a stack deployed with its defaults scales as the code's defaults would."""
    _, _, merged = packaged
    template = load_template()
    defaults = Settings()
    for function in FUNCTIONS:
        variables = merged["Resources"][function.logical_id]["Properties"]["Environment"][
            "Variables"
        ]
        for variable, output in SCALING_ENVIRONMENT.items():
            reference = template["Outputs"][output]["Value"]
            assert variables[variable] == reference and set(reference) == {"Ref"}, variable
            default = merged["Parameters"][reference["Ref"]]["Default"]
            (name,) = [
                f.name for f in dataclasses.fields(Settings) if variable in f.metadata["variables"]
            ]
            assert getattr(Settings.from_env({variable: str(default)}), name) == getattr(
                defaults, name
            ), variable


def _packer_root_volume() -> tuple[str, int]:
    """The worker AMI's root device and its size in GB, as the packer template builds it."""
    hcl = (ROOT / "worker_ami" / "packer" / "worker.pkr.hcl").read_text()
    block = re.search(r"launch_block_device_mappings \{(.*?)\}", hcl, re.S)[1]
    return re.search(r'device_name\s*=\s*"([^"]+)"', block)[1], int(
        re.search(r"volume_size\s*=\s*(\d+)", block)[1]
    )


def _render(value: Any, parameters: dict[str, str], conditions: dict[str, bool]) -> Any:
    """`value` as CloudFormation would hand it to EC2, for the conditions given: Fn::If decided,
    AWS::NoValue dropped, parameters filled in, any other intrinsic a placeholder string."""
    if isinstance(value, list):
        return [
            r
            for r in (_render(item, parameters, conditions) for item in value)
            if r is not _NO_VALUE
        ]
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            condition, if_true, if_false = value["Fn::If"]
            return _render(if_true if conditions[condition] else if_false, parameters, conditions)
        if value == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            return parameters[value["Ref"]]
        if len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref")):
            return "resolved-by-cloudformation"
        rendered = {key: _render(item, parameters, conditions) for key, item in value.items()}
        return {key: item for key, item in rendered.items() if item is not _NO_VALUE}
    return value


_NO_VALUE = object()


@pytest.mark.parametrize("hibernation", ["true", "false"])
def test_the_launch_template_renders_valid_with_hibernation_either_way(packaged, hibernation):
    """EC2's own request shape (botocore's model of CreateLaunchTemplate) takes the launch
    template's data either way; the root volume (the AMI's device) is encrypted either way and,
    hibernating, holds the AMI's disk plus c6i.large's 4 GiB of RAM."""
    _, _, merged = packaged
    parameters = {name: str(spec.get("Default", "")) for name, spec in merged["Parameters"].items()}
    parameters["WorkerHibernation"] = hibernation
    conditions = {"WorkerHibernates": hibernation == "true", "AlarmEmailGiven": False}
    assert merged["Conditions"]["WorkerHibernates"] == {
        "Fn::Equals": [{"Ref": "WorkerHibernation"}, "true"]
    }
    data = _render(
        merged["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"],
        parameters,
        conditions,
    )
    shape = (
        botocore.session.get_session()
        .get_service_model("ec2")
        .operation_model("CreateLaunchTemplate")
        .input_shape
    )
    report = ParamValidator().validate(
        {"LaunchTemplateName": "facerec-dev-worker", "LaunchTemplateData": data}, shape
    )
    assert not report.has_errors(), report.generate_report()
    assert data["HibernationOptions"] == {"Configured": hibernation == "true"}
    assert (
        data["InstanceInitiatedShutdownBehavior"] == "terminate"
    )  # pooling goes through StopInstances
    device, ami_gb = _packer_root_volume()
    (root,) = data["BlockDeviceMappings"]
    assert root["DeviceName"] == device
    assert root["Ebs"]["Encrypted"] is True and root["Ebs"]["DeleteOnTermination"] is True
    if hibernation == "false":
        assert root["Ebs"]["VolumeSize"] == ami_gb  # the AMI's own size
        return
    c6i_large_ram_gib = 4
    assert (
        parameters["WorkerInstanceType"] == "c6i.large"
        and root["Ebs"]["VolumeSize"] >= ami_gb + c6i_large_ram_gib
    )


def test_the_tables_point_in_time_recovery_is_decided_for_each(packaged):
    """On for the people table, kept a week (a deleted person's row outlives the DELETE in the
    backups that long, as infra/README.md states); off, explicitly, for the jobs and leases."""
    _, _, merged = packaged
    tables = {
        name: r["Properties"]
        for name, r in merged["Resources"].items()
        if r["Type"] == "AWS::DynamoDB::Table"
    }
    recovery = {
        name: properties["PointInTimeRecoverySpecification"] for name, properties in tables.items()
    }
    assert recovery == {
        "JobsTable": {"PointInTimeRecoveryEnabled": False},
        "PeopleTable": {"PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 7},
        "LeasesTable": {"PointInTimeRecoveryEnabled": False},
    }
    assert "RecoveryPeriodInDays: 7" in (ROOT / "infra" / "README.md").read_text()


def test_both_buckets_refuse_every_request_without_tls(packaged):
    _, _, merged = packaged
    resources = merged["Resources"]
    buckets = {name for name, r in resources.items() if r["Type"] == "AWS::S3::Bucket"}
    policies = {
        r["Properties"]["Bucket"]["Ref"]: r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::S3::BucketPolicy"
    }
    assert buckets == {"InputBucket", "OutputBucket"} and set(policies) == buckets
    for bucket, document in policies.items():
        (deny,) = [
            s
            for s in document["Statement"]
            if s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
        # The bucket (LIST) and every object in it.
        assert deny["Resource"] == [
            {"Fn::GetAtt": [bucket, "Arn"]},
            {"Fn::Sub": f"${{{bucket}.Arn}}/*"},
        ]


def test_workers_run_in_a_group_of_their_own_that_lets_nothing_in(packaged):
    _, _, merged = packaged
    resources = merged["Resources"]
    group = resources["WorkerSecurityGroup"]
    assert group["Type"] == "AWS::EC2::SecurityGroup"
    assert "SecurityGroupIngress" not in group["Properties"]
    assert not [
        name for name, r in resources.items() if r["Type"] == "AWS::EC2::SecurityGroupIngress"
    ]
    data = resources["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["SecurityGroupIds"] == [{"Fn::GetAtt": ["WorkerSecurityGroup", "GroupId"]}]
    assert "NetworkInterfaces" not in data  # which would take its own groups instead


def test_deploy_takes_any_other_stack_parameter_by_name():
    assert parse_parameters(["WarmPoolSize=2", "WorkerHibernation=true"]) == {
        "WarmPoolSize": "2",
        "WorkerHibernation": "true",
    }
    # The merged stack's throttle too, though infra/template.yaml does not declare it.
    assert parse_parameters(["ApiStageRateLimit=50", "ApiKeyDailyQuota=500"]) == {
        "ApiStageRateLimit": "50",
        "ApiKeyDailyQuota": "500",
    }
    for wrong in ("WarmPool=2", "WarmPoolSize", "StagePrefix=facerec-x"):
        with pytest.raises(DeployError, match="NAME=VALUE"):
            parse_parameters([wrong])


def test_the_functions_run_with_aws_powertools_layer_at_the_pinned_version(packaged):
    """The functions import Powertools (JSON logs, metrics) from AWS's layer, not from their
    bundle: the layer's public parameter names the version pyproject pins for the workers."""
    _, _, merged = packaged
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [p for p in pins if p.startswith("aws-lambda-powertools==")]
    parameter = merged["Parameters"]["PowertoolsLayerArn"]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert parameter[
        "Default"
    ] == POWERTOOLS_LAYER_PARAMETER and POWERTOOLS_LAYER_PARAMETER.endswith(
        "/" + pin.split("==")[1]
    )
    runtimes = {merged["Resources"][f.logical_id]["Properties"]["Runtime"] for f in FUNCTIONS}
    assert runtimes == {"python3.11"} and "/python3.11/" in POWERTOOLS_LAYER_PARAMETER
    for function in FUNCTIONS:
        assert merged["Resources"][function.logical_id]["Properties"]["Layers"] == [
            {"Ref": "PowertoolsLayerArn"}
        ]


def test_the_workflow_invokes_the_packaged_scale_up_function(packaged):
    _stage, _, merged = packaged
    assert "ScaleUpFunctionArn" not in merged["Parameters"]
    definition = merged["Resources"]["JobWorkflow"]["Properties"]["DefinitionString"]["Fn::Sub"]
    assert (
        json.loads(definition)["States"]["Launch workers if needed"]["Parameters"]["FunctionName"]
        == "${ScaleUp.Arn}"
    )
    assert set(re.findall(r"\$\{([^}]+)\}", definition)) == {
        "JobsTable",
        "JobsQueue",
        "ScaleUp.Arn",
    }
    statements = merged["Resources"]["WorkflowRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    invoke = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    assert [s["Resource"] for s in invoke] == [{"Fn::GetAtt": ["ScaleUp", "Arn"]}]


def test_the_upload_events_source_is_the_stacks_queue(packaged):
    stage, _, merged = packaged
    prefix = configured_stage_prefix(stage)
    assert merged["Parameters"]["StagePrefix"]["AllowedValues"] == [prefix]
    (source,) = merged["Resources"]["OnUploadEvents"]["Properties"]["Events"].values()
    queue_name = merged["Resources"]["UploadEventsQueue"]["Properties"]["QueueName"][
        "Fn::Sub"
    ].replace("${StagePrefix}", prefix)
    assert source["Properties"]["Queue"]["Fn::Sub"].endswith(f":{queue_name}")


def test_the_package_passes_cfn_lint_with_the_sam_transform(packaged):
    _, out, _ = packaged
    done = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(out / "sam.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _uploaded(merged: dict[str, Any]) -> dict[str, Any]:
    """The package as deploy uploads it: the functions' code at an S3 location."""
    uploaded = json.loads(json.dumps(merged))
    for resource in uploaded["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = {
                "Bucket": "facerec-artifacts",
                "Key": "deployment.zip",
            }
    return uploaded


def test_the_real_sam_transform_of_the_package_passes_cfn_lint(packaged, tmp_path):
    """What CloudFormation runs: SAM's own transform on the package as deploy uploads it (the code
    at an S3 location), linted as the plain template it becomes."""
    _, _, merged = packaged
    # No function names a managed policy, so the transform asks IAM nothing: a client suffices.
    transformed = sam_transform(_uploaded(merged), boto3.client("iam", region_name="us-east-1"))
    assert "Transform" not in transformed
    kinds = {r["Type"] for r in transformed["Resources"].values()}
    assert not {k for k in kinds if k.startswith("AWS::Serverless::")}
    assert {
        "AWS::Lambda::Function",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Events::Rule",
        "AWS::ApiGateway::RestApi",
    } <= kinds
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(transformed))
    done = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_chalice_accepts_the_config_the_chalice_deploy_path_writes(tmp_path):
    """`deploy-infra` writes the infra stack's names and roles into config.json; Chalice then
    gives each function its role and every variable (checked with `chalice package`, offline)."""
    project = tmp_path / "chalice_app"
    shutil.copytree(
        ROOT / "chalice_app",
        project,
        ignore=shutil.ignore_patterns("__pycache__", "deployments", "deployed"),
    )
    stage = Stage.of("dev", "eu-west-1", "111122223333")
    outputs = {key: f"value-of-{key}" for key in APP_ENVIRONMENT.values()}
    outputs.update({key: "3" for key in SCALING_ENVIRONMENT.values()})
    outputs.update({f"{f.role}Arn": f"arn:aws:iam::111122223333:role/{f.role}" for f in FUNCTIONS})
    layer = (
        "arn:aws:lambda:eu-west-1:017000801446:layer:"
        "AWSLambdaPowertoolsPythonV3-python311-x86_64:99"
    )
    write_chalice_config(stage, outputs, layer, project / ".chalice" / "config.json")

    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("chalice")),
            "--project-dir",
            str(project),
            "package",
            "--stage",
            "dev",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AWS_DEFAULT_REGION": "eu-west-1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    resources = json.loads((tmp_path / "out" / "sam.json").read_text())["Resources"]
    for function in FUNCTIONS:
        properties = resources[function.logical_id]["Properties"]
        assert properties["Role"] == outputs[f"{function.role}Arn"]
        assert properties["Layers"] == [layer]
        settings = Settings.from_env(properties["Environment"]["Variables"])
        assert settings.jobs_queue_url == "value-of-JobsQueueUrl"
        assert settings.admin_token_parameter == stage.admin_token_parameter
        assert (
            settings.warm_pool_size,
            settings.min_workers,
            settings.drain_objective_seconds,
        ) == (3, 3, 3.0)
