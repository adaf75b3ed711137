"""Least privilege, read from the template every deploy path uses: no statement grants every action
or every resource except the documented few, workers end only workers, scale-up launches only
tagged workers from the launch template, and each part runs as its own role."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from chalicelib.contract import GALLERY_PREFIX, RESULT_PREFIX, STAGE_TAG, UPLOAD_PREFIX, WORKER_ROLE_TAG
from chalicelib.contract.telemetry import metrics_namespace
from deploy_support import package
from infra.names import FUNCTIONS
from infra.stack import load_template

# The only actions allowed on Resource "*", each with the reason it cannot be scoped. The template
# says the same next to each statement.
RESOURCE_STAR_EXCEPTIONS = {
    # EC2 authorizes DescribeInstances only on "*" (no resource-level permissions).
    "ec2:DescribeInstances",
    # Step Functions' log delivery for Express workflows; these CloudWatch Logs actions take no ARNs.
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    # CloudWatch authorizes PutMetricData only on "*"; the statement's namespace condition scopes it
    # (test_workers_put_metrics_and_logs_only_in_their_stages_namespace_and_group).
    "cloudwatch:PutMetricData",
}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(resource name, statement) for every IAM statement in the template: roles' inline policies,
    managed policies and resource policies."""
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
        if "PolicyDocument" in properties:
            documents.append(properties["PolicyDocument"])
        for document in documents:
            for statement in document["Statement"]:
                yield name, statement


def violations(statement: dict[str, Any]) -> list[str]:
    """What is wrong with one statement under our rules; empty when nothing is."""
    problems = [f"{key} is not allowed" for key in ("NotAction", "NotResource") if key in statement]
    if statement.get("Effect") != "Allow":
        return problems
    actions = _listed(statement.get("Action", []))
    problems += [f"action {a!r} grants a whole service" for a in actions if a == "*" or str(a).endswith(":*")]
    if "*" in _listed(statement.get("Resource", [])):
        problems += [f"{a} on Resource '*' is not a documented exception" for a in actions if a not in RESOURCE_STAR_EXCEPTIONS]
    return problems


@pytest.fixture(scope="module", params=["template", "package"])
def template(request, tmp_path_factory) -> dict[str, Any]:
    """infra/template.yaml alone (the `chalice deploy` path), and what `make deploy` ships:
    `chalice package` merged with it (any role or policy Chalice added would show here)."""
    return load_template() if request.param == "template" else package("dev", tmp_path_factory.mktemp("iam") / "dev")


def test_no_statement_grants_star_actions_or_star_resources_beyond_the_documented(template):
    found = {f"{name}: {problem}" for name, statement in policy_statements(template) for problem in violations(statement)}
    assert not found


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Action": ["ec2:DescribeInstances", "ec2:TerminateInstances"], "Resource": "*"},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"},
    ],
)
def test_the_check_catches_what_it_forbids(statement):
    assert violations(statement)


def _role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [statement for name, statement in policy_statements(template) if name == role]


def test_workers_terminate_only_instances_tagged_as_this_stages_workers(template):
    statements = _role_statements(template, "WorkerRole")
    ec2 = [s for s in statements if any(str(a).startswith("ec2:") for a in _listed(s["Action"]))]
    (terminate,) = ec2
    assert _listed(terminate["Action"]) == ["ec2:TerminateInstances"]
    role_key, role_value = WORKER_ROLE_TAG
    assert terminate["Condition"]["StringEquals"] == {
        f"ec2:ResourceTag/{role_key}": role_value,
        f"ec2:ResourceTag/{STAGE_TAG}": {"Ref": "StagePrefix"},
    }


def test_scale_up_launches_only_tagged_workers_from_the_launch_template_and_passes_only_their_role(template):
    statements = _role_statements(template, "ScaleUpFunctionRole")
    run = [s for s in statements if "ec2:RunInstances" in _listed(s["Action"])]
    for statement in run:
        resources = " ".join(str(r) for r in _listed(statement["Resource"]))
        if "launch-template/" in resources:
            continue  # the launch template itself
        assert "ec2:LaunchTemplate" in statement["Condition"]["ArnLike"], statement
        if "instance/" in resources:
            role_key, role_value = WORKER_ROLE_TAG
            assert statement["Condition"]["StringEquals"][f"aws:RequestTag/{role_key}"] == role_value
            assert statement["Condition"]["StringEquals"][f"aws:RequestTag/{STAGE_TAG}"] == {"Ref": "StagePrefix"}
    (pass_role,) = [s for s in statements if "iam:PassRole" in _listed(s["Action"])]
    assert pass_role["Resource"] == {"Fn::GetAtt": ["WorkerRole", "Arn"]}
    assert pass_role["Condition"]["StringEquals"] == {"iam:PassedToService": "ec2.amazonaws.com"}
    (tags,) = [s for s in statements if "ec2:CreateTags" in _listed(s["Action"])]
    assert tags["Condition"]["StringEquals"] == {"ec2:CreateAction": "RunInstances"}


def test_each_part_has_its_own_role_trusted_by_its_service_only(template):
    resources = template["Resources"]
    expected = {
        "ApiFunctionRole": "lambda.amazonaws.com",
        "UploadEventsFunctionRole": "lambda.amazonaws.com",
        "ScaleUpFunctionRole": "lambda.amazonaws.com",
        "WorkflowRole": "states.amazonaws.com",
        "WorkerRole": "ec2.amazonaws.com",
    }
    for role, service in expected.items():
        (trust,) = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": service} and trust["Action"] == "sts:AssumeRole", role
    assert {f.role for f in FUNCTIONS} == {r for r, s in expected.items() if s == "lambda.amazonaws.com"}
    profile = resources["WorkerInstanceProfile"]["Properties"]["Roles"]
    assert profile == [{"Ref": "WorkerRole"}]
    data = resources["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["IamInstanceProfile"] == {"Arn": {"Fn::GetAtt": ["WorkerInstanceProfile", "Arn"]}}


def test_only_the_api_reads_the_admin_token_and_only_the_upload_handler_starts_workflows(template):
    ssm = [name for name, s in policy_statements(template) if any(str(a).startswith("ssm:") for a in _listed(s["Action"]))]
    assert ssm == ["ApiFunctionRole"]
    starts = [(name, s["Resource"]) for name, s in policy_statements(template) if "states:StartExecution" in _listed(s["Action"])]
    assert starts == [("UploadEventsFunctionRole", {"Ref": "JobWorkflow"})]


def test_workers_put_metrics_and_logs_only_in_their_stages_namespace_and_group(template):
    statements = _role_statements(template, "WorkerRole")
    (metrics,) = [s for s in statements if "cloudwatch:PutMetricData" in _listed(s["Action"])]
    namespace = metrics["Condition"]["StringEquals"]["cloudwatch:namespace"]
    assert namespace == {"Fn::Sub": metrics_namespace("${StagePrefix}")}
    logs = [s for s in statements if any(str(a).startswith("logs:") for a in _listed(s["Action"]))]
    assert [s["Resource"] for s in logs] == [{"Fn::GetAtt": ["WorkerLogGroup", "Arn"]}]
    assert "logs:CreateLogGroup" not in _listed(logs[0]["Action"])  # the stack makes the group, with its retention
    # Nothing else may write metrics or logs anywhere.
    others = {name for name, s in policy_statements(template) if "cloudwatch:PutMetricData" in _listed(s.get("Action", []))}
    assert others == {"WorkerRole"}


def test_workers_list_only_the_prefixes_they_read(template):
    statements = _role_statements(template, "WorkerRole")
    listing = {str(s["Resource"]): s["Condition"]["StringLike"]["s3:prefix"] for s in statements if "s3:ListBucket" in _listed(s["Action"])}
    assert listing == {
        str({"Fn::GetAtt": ["InputBucket", "Arn"]}): [f"{UPLOAD_PREFIX}*"],
        str({"Fn::GetAtt": ["OutputBucket", "Arn"]}): [f"{RESULT_PREFIX}*", f"{GALLERY_PREFIX}*"],
    }


def test_only_the_api_and_the_workers_delete_objects_and_only_what_a_deletion_or_compaction_removes(template):
    """The API deletes a person's photos and results; a worker's compaction, gallery objects."""
    deletes: dict[str, list[Any]] = {}
    for name, statement in policy_statements(template):
        if "s3:DeleteObject" in _listed(statement["Action"]):
            deletes.setdefault(name, []).extend(_listed(statement["Resource"]))
    assert deletes == {
        "ApiFunctionRole": [{"Fn::Sub": "${InputBucket.Arn}/uploads/*"}, {"Fn::Sub": "${OutputBucket.Arn}/results/*"}],
        "WorkerRole": [{"Fn::Sub": "${OutputBucket.Arn}/gallery/*"}],
    }


def test_workers_have_exactly_the_dynamodb_rights_their_calls_need(template):
    """Jobs: claims and outcomes (GetItem, UpdateItem) and a compaction's read of its jobs'
    statuses (BatchGetItem). People: the enrollee's and the matched people's rows read by key,
    and the photo count (UpdateItem). No scans, no puts, no deletes."""
    rights: dict[str, set[str]] = {}
    for statement in _role_statements(template, "WorkerRole"):
        actions = {str(a) for a in _listed(statement["Action"]) if str(a).startswith("dynamodb:")}
        if actions:
            rights.setdefault(str(statement["Resource"]), set()).update(actions)
    by_key = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"}
    assert rights == {str({"Fn::GetAtt": ["JobsTable", "Arn"]}): by_key, str({"Fn::GetAtt": ["PeopleTable", "Arn"]}): by_key}
