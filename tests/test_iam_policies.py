"""Least privilege, read from the template every deploy path uses: no statement grants every action
or every resource except the documented few, a worker stops and ends only itself, scale-up launches
only tagged workers of the launch template's instance type from the launch template, and each part
runs as its own role.

Where a right hangs on conditions (tags, leading keys, the source instance), `allowed` evaluates
the role's statements for one request with local_service.iam_policy, the evaluator the local stack
enforces them with (an explicit deny wins, else any allow; an operator it does not know fails the
test rather than pass it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from deploy_support import package

from chalicelib.contract import (
    BATCH_UPLOAD_PREFIX,
    GALLERY_PREFIX,
    RESULT_PREFIX,
    STAGE_TAG,
    UPLOAD_PREFIX,
    WORKER_ROLE_TAG,
)
from chalicelib.contract.fleet_plan import PLAN_KEY
from chalicelib.services import SCALE_UP_LEASE
from infra.names import FUNCTIONS
from infra.stack import load_template
from local_service import iam_policy
from local_service.iam_policy import PolicyEvaluationError, Request, fill

# The only actions allowed on Resource "*", each with the reason it cannot be scoped. The template
# says the same next to each statement.
RESOURCE_STAR_EXCEPTIONS = {
    # EC2 authorizes DescribeInstances and DescribeLaunchTemplates only on "*" (no resource-level
    # permissions).
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplates",
    # Step Functions' log delivery for Express workflows; these CloudWatch Logs actions take no
    # ARNs.
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
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
    problems += [
        f"action {a!r} grants a whole service" for a in actions if a == "*" or str(a).endswith(":*")
    ]
    if "*" in _listed(statement.get("Resource", [])):
        problems += [
            f"{a} on Resource '*' is not a documented exception"
            for a in actions
            if a not in RESOURCE_STAR_EXCEPTIONS
        ]
    return problems


@pytest.fixture(scope="module", params=["template", "package"])
def template(request, tmp_path_factory) -> dict[str, Any]:
    """infra/template.yaml alone (the `chalice deploy` path), and what `make deploy` ships:
    `chalice package` merged with it (any role or policy Chalice added would show here)."""
    return (
        load_template()
        if request.param == "template"
        else package("dev", tmp_path_factory.mktemp("iam") / "dev")
    )


def test_no_statement_grants_star_actions_or_star_resources_beyond_the_documented(template):
    found = {
        f"{name}: {problem}"
        for name, statement in policy_statements(template)
        for problem in violations(statement)
    }
    assert not found


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {
            "Effect": "Allow",
            "Action": ["ec2:DescribeInstances", "ec2:TerminateInstances"],
            "Resource": "*",
        },
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"},
    ],
)
def test_the_check_catches_what_it_forbids(statement):
    assert violations(statement)


def _role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [statement for name, statement in policy_statements(template) if name == role]


def test_workers_terminate_and_stop_only_instances_tagged_as_this_stages_workers(template):
    statements = _role_statements(template, "WorkerRole")
    ec2 = [s for s in statements if any(str(a).startswith("ec2:") for a in _listed(s["Action"]))]
    assert {str(a) for s in ec2 for a in _listed(s["Action"])} == {
        "ec2:TerminateInstances",
        "ec2:StopInstances",
    }
    role_key, role_value = WORKER_ROLE_TAG
    for statement in ec2:
        assert statement["Condition"]["StringEquals"] == {
            f"ec2:ResourceTag/{role_key}": role_value,
            f"ec2:ResourceTag/{STAGE_TAG}": {"Ref": "StagePrefix"},
        }


def test_scale_up_launches_only_tagged_workers_from_the_launch_template_and_passes_only_their_role(
    template,
):
    statements = _role_statements(template, "ScaleUpFunctionRole")
    run = [s for s in statements if "ec2:RunInstances" in _listed(s["Action"])]
    for statement in run:
        resources = " ".join(str(r) for r in _listed(statement["Resource"]))
        if "launch-template/" in resources:
            continue  # the launch template itself
        assert "ec2:LaunchTemplate" in statement["Condition"]["ArnLike"], statement
        if "instance/" in resources:
            role_key, role_value = WORKER_ROLE_TAG
            assert (
                statement["Condition"]["StringEquals"][f"aws:RequestTag/{role_key}"] == role_value
            )
            assert statement["Condition"]["StringEquals"][f"aws:RequestTag/{STAGE_TAG}"] == {
                "Ref": "StagePrefix"
            }
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
        assert trust["Principal"] == {"Service": service} and trust["Action"] == "sts:AssumeRole", (
            role
        )
    assert {f.role for f in FUNCTIONS} == {
        r for r, s in expected.items() if s == "lambda.amazonaws.com"
    }
    profile = resources["WorkerInstanceProfile"]["Properties"]["Roles"]
    assert profile == [{"Ref": "WorkerRole"}]
    data = resources["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["IamInstanceProfile"] == {"Arn": {"Fn::GetAtt": ["WorkerInstanceProfile", "Arn"]}}


def test_only_the_api_reads_the_admin_token_and_the_upload_handler_and_batches_start_workflows(
    template,
):
    ssm = [
        name
        for name, s in policy_statements(template)
        if any(str(a).startswith("ssm:") for a in _listed(s["Action"]))
    ]
    assert ssm == ["ApiFunctionRole"]
    starts = [
        (name, s["Resource"])
        for name, s in policy_statements(template)
        if "states:StartExecution" in _listed(s["Action"])
    ]
    assert sorted(starts) == [
        ("ApiFunctionRole", {"Ref": "JobWorkflow"}),
        ("UploadEventsFunctionRole", {"Ref": "JobWorkflow"}),
    ]


def test_workers_write_logs_and_metrics_only_to_their_stages_group(template):
    """The CloudWatch agent ships the worker's log and its EMF metrics to the stage's group; the
    functions' metrics are EMF in their own logs: nothing calls PutMetricData."""
    statements = _role_statements(template, "WorkerRole")
    logs = [s for s in statements if any(str(a).startswith("logs:") for a in _listed(s["Action"]))]
    assert [s["Resource"] for s in logs] == [{"Fn::GetAtt": ["WorkerLogGroup", "Arn"]}]
    assert "logs:CreateLogGroup" not in _listed(
        logs[0]["Action"]
    )  # the stack makes the group, with its retention
    writers = {
        name
        for name, s in policy_statements(template)
        if "cloudwatch:PutMetricData" in _listed(s.get("Action", []))
    }
    assert writers == set()


def test_workers_list_only_the_prefixes_they_read(template):
    statements = _role_statements(template, "WorkerRole")
    listing = {
        str(s["Resource"]): s["Condition"]["StringLike"]["s3:prefix"]
        for s in statements
        if "s3:ListBucket" in _listed(s["Action"])
    }
    assert listing == {
        str({"Fn::GetAtt": ["InputBucket", "Arn"]}): [
            f"{UPLOAD_PREFIX}*",
            f"{BATCH_UPLOAD_PREFIX}*",
        ],
        str({"Fn::GetAtt": ["OutputBucket", "Arn"]}): [f"{RESULT_PREFIX}*", f"{GALLERY_PREFIX}*"],
    }


def test_only_deletions_compactions_and_refused_uploads_delete_objects_and_only_what_they_remove(
    template,
):
    """The API deletes a person's photos (a batch's too) and results; the upload handler, an upload
    through the slot of a job deleted with its person; a worker's compaction, gallery objects."""
    deletes: dict[str, list[Any]] = {}
    for name, statement in policy_statements(template):
        if "s3:DeleteObject" in _listed(statement["Action"]):
            deletes.setdefault(name, []).extend(_listed(statement["Resource"]))
    assert deletes == {
        "ApiFunctionRole": [
            {"Fn::Sub": "${InputBucket.Arn}/uploads/*"},
            {"Fn::Sub": "${InputBucket.Arn}/batches/*"},
            {"Fn::Sub": "${OutputBucket.Arn}/results/*"},
        ],
        "UploadEventsFunctionRole": [{"Fn::Sub": "${InputBucket.Arn}/uploads/*"}],
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
    assert rights == {
        str({"Fn::GetAtt": ["JobsTable", "Arn"]}): by_key,
        str({"Fn::GetAtt": ["PeopleTable", "Arn"]}): by_key,
        # The fleet plan's item only
        # (test_workers_may_touch_only_the_fleet_plan_item_of_the_leases_table).
        str({"Fn::GetAtt": ["LeasesTable", "Arn"]}): {"dynamodb:GetItem", "dynamodb:UpdateItem"},
    }


# --- evaluating a role's statements for one request -------------------------------------------

ACCOUNT, REGION = "111122223333", "us-east-1"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
_SUB = re.compile(r"\$\{([^!}][^}]*)\}")


def stand_in(logical_id: str) -> str:
    """The ARN a resource of the stack stands for here (the same in the policy and the request)."""
    return f"arn:aws:stack:{REGION}:{ACCOUNT}:{logical_id}"


def resolve(value: Any, template: Mapping[str, Any]) -> Any:
    """`value` with Ref, GetAtt ... Arn and Sub resolved: parameters by their defaults, resources
    by their stand-in ARNs."""
    parameters = {
        name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()
    }

    def name(ref: str) -> str:
        if ref in PSEUDO:
            return PSEUDO[ref]
        if ref in parameters:
            return parameters[ref]
        logical_id, _, attribute = ref.partition(".")
        assert logical_id in template["Resources"] and attribute in ("", "Arn"), ref
        return stand_in(logical_id)

    if isinstance(value, list):
        return [resolve(item, template) for item in value]
    if isinstance(value, dict):
        if "Ref" in value:
            return name(value["Ref"])
        if "Fn::GetAtt" in value:
            return name(".".join(value["Fn::GetAtt"]))
        if "Fn::Sub" in value:
            text, variables = (
                (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
            )
            given = {key: resolve(item, template) for key, item in variables.items()}
            # ${!Name} is CloudFormation's escape for a literal ${Name}: here, an IAM policy
            # variable.
            return _SUB.sub(lambda match: given.get(match[1]) or name(match[1]), text).replace(
                "${!", "${"
            )
        return {key: resolve(item, template) for key, item in value.items()}
    return value


def allowed(template: Mapping[str, Any], role: str, request: Request) -> bool:
    """Whether the role's own statements allow `request`, by the evaluator the local stack
    enforces them with."""
    return iam_policy.allowed(
        [resolve(s, template) for s in _role_statements(template, role)], request
    )


def test_the_evaluator_reads_conditions_as_iam_does():
    template = {
        "Parameters": {},
        "Resources": {
            "R": {
                "Properties": {
                    "Policies": [
                        {
                            "PolicyDocument": {
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": "ec2:StopInstances",
                                        "Resource": "arn:aws:ec2:*:*:instance/*",
                                        "Condition": {"StringEquals": {"ec2:ResourceTag/k": "v"}},
                                    },
                                    {
                                        "Effect": "Allow",
                                        "Action": "dynamodb:GetItem",
                                        "Resource": "arn:t",
                                        "Condition": {
                                            "ForAllValues:StringEquals": {
                                                "dynamodb:LeadingKeys": ["a"]
                                            }
                                        },
                                    },
                                    {
                                        "Effect": "Allow",
                                        "Action": "s3:GetObject",
                                        "Resource": "arn:s",
                                        "Condition": {"NumericLessThan": {"k": "1"}},
                                    },
                                    {
                                        "Effect": "Allow",
                                        "Action": "ec2:RebootInstances",
                                        "Resource": "arn:aws:ec2:*:*:instance/*",
                                        "Condition": {
                                            "ArnEquals": {
                                                "ec2:SourceInstanceARN": (
                                                    "arn:aws:ec2:us-east-1:1:instance/"
                                                    "${ec2:InstanceID}"
                                                )
                                            }
                                        },
                                    },
                                ]
                            }
                        }
                    ]
                }
            }
        },
    }
    instance = "arn:aws:ec2:us-east-1:1:instance/i-1"
    assert allowed(
        template, "R", Request("ec2:StopInstances", instance, {"ec2:ResourceTag/k": "v"})
    )
    assert not allowed(
        template, "R", Request("ec2:StopInstances", instance, {"ec2:ResourceTag/k": "w"})
    )
    assert not allowed(template, "R", Request("ec2:StopInstances", instance))  # untagged
    assert not allowed(
        template, "R", Request("ec2:StartInstances", instance, {"ec2:ResourceTag/k": "v"})
    )
    assert allowed(
        template, "R", Request("dynamodb:GetItem", "arn:t", {"dynamodb:LeadingKeys": ["a"]})
    )
    assert not allowed(
        template, "R", Request("dynamodb:GetItem", "arn:t", {"dynamodb:LeadingKeys": ["a", "b"]})
    )
    with pytest.raises(PolicyEvaluationError, match="NumericLessThan"):
        allowed(template, "R", Request("s3:GetObject", "arn:s", {"k": "0"}))
    # A policy variable takes the request's value; a request without the key matches nothing.
    itself = {"ec2:SourceInstanceARN": instance, "ec2:InstanceID": "i-1"}
    assert allowed(template, "R", Request("ec2:RebootInstances", instance, itself))
    assert not allowed(
        template, "R", Request("ec2:RebootInstances", instance, {**itself, "ec2:InstanceID": "i-2"})
    )
    assert not allowed(
        template, "R", Request("ec2:RebootInstances", instance, {"ec2:SourceInstanceARN": instance})
    )
    assert (
        fill("a/${k}", {"k": "v"}) == "a/v"
        and fill("a/${k}", {}) is None
        and fill("a/${k}", {"k": ["v"]}) is None
    )


def _instance(
    template: Mapping[str, Any],
    role: str = "worker",
    stage: str | None = None,
    instance_id: str = "i-0123456789abcdef0",
) -> tuple[str, dict[str, str]]:
    """An instance's ARN and the keys a request on it carries: its tags and its id."""
    role_key, _ = WORKER_ROLE_TAG
    tags = {role_key: role, STAGE_TAG: stage or resolve({"Ref": "StagePrefix"}, template)}
    context = {f"ec2:ResourceTag/{k}": v for k, v in tags.items()}
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance_id}", {
        **context,
        "ec2:InstanceID": instance_id,
    }


def _from(source: str, request: tuple[str, dict[str, str]]) -> tuple[str, dict[str, str]]:
    """The request made with the instance-profile credentials of the instance `source` (its ARN)."""
    resource, context = request
    return resource, {**context, "ec2:SourceInstanceARN": source}


@pytest.mark.parametrize("action", ["ec2:StartInstances", "ec2:TerminateInstances"])
def test_scale_up_starts_and_terminates_only_this_stages_workers(template, action):
    worker, tags = _instance(template)
    assert allowed(template, "ScaleUpFunctionRole", Request(action, worker, tags))
    for other in (_instance(template, stage="facerec-other"), _instance(template, role="database")):
        assert not allowed(template, "ScaleUpFunctionRole", Request(action, *other))
    assert not allowed(template, "ScaleUpFunctionRole", Request(action, worker))  # untagged
    # Pooling is the workers' own decision: scale-up never stops one.
    assert not allowed(template, "ScaleUpFunctionRole", Request("ec2:StopInstances", worker, tags))


def _launch(template: Mapping[str, Any], resource: str, **keys: str | None) -> Request:
    """RunInstances as scale-up asks it, for one of its resources (`resource`: instance, volume):
    from the worker launch template, with its tags and its instance type; `keys` change them (None
    leaves a key out)."""
    role_key, role_value = WORKER_ROLE_TAG
    context = {
        "ec2:LaunchTemplate": resolve(
            {
                "Fn::Sub": (
                    "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:"
                    "launch-template/${WorkerLaunchTemplate}"
                )
            },
            template,
        ),
        f"aws:RequestTag/{role_key}": role_value,
        f"aws:RequestTag/{STAGE_TAG}": resolve({"Ref": "StagePrefix"}, template),
    }
    if resource == "instance":  # only the instance carries its type
        context["ec2:InstanceType"] = resolve({"Ref": "WorkerInstanceType"}, template)
    context.update(keys)
    given = {key: value for key, value in context.items() if value is not None}
    return Request(
        "ec2:RunInstances",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:{resource}/{resource[:3]}-0123456789abcdef0",
        given,
    )


def test_scale_up_launches_only_the_launch_templates_instance_type_from_it(template):
    """Issue 19: RunInstances takes overrides of the launch template, the instance type among them;
    the template's type is the only one scale-up may launch (and the volumes come with it)."""
    for resource in ("instance", "volume"):
        assert allowed(template, "ScaleUpFunctionRole", _launch(template, resource))
    assert not allowed(
        template,
        "ScaleUpFunctionRole",
        _launch(template, "instance", **{"ec2:InstanceType": "p5.48xlarge"}),
    )
    other_template = f"arn:aws:ec2:{REGION}:{ACCOUNT}:launch-template/lt-0123456789abcdef0"
    for resource in ("instance", "volume"):
        assert not allowed(
            template,
            "ScaleUpFunctionRole",
            _launch(template, resource, **{"ec2:LaunchTemplate": other_template}),
        )
    assert not allowed(
        template,
        "ScaleUpFunctionRole",
        _launch(template, "instance", **{"ec2:LaunchTemplate": None}),
    )
    statements = _role_statements(template, "ScaleUpFunctionRole")
    (instances,) = [
        s
        for s in statements
        if "ec2:RunInstances" in _listed(s["Action"])
        and any("instance/" in str(r) for r in _listed(s["Resource"]))
    ]
    assert instances["Condition"]["StringEquals"]["ec2:InstanceType"] == {
        "Ref": "WorkerInstanceType"
    }
    assert "ec2:LaunchTemplate" in instances["Condition"]["ArnLike"]
    data = template["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["InstanceType"] == {
        "Ref": "WorkerInstanceType"
    }  # the type the policy allows is the template's


def test_scale_up_reads_the_launch_templates_version(template):
    assert allowed(template, "ScaleUpFunctionRole", Request("ec2:DescribeLaunchTemplates", "*"))
    assert not allowed(template, "ScaleUpFunctionRole", Request("ec2:ModifyLaunchTemplate", "*"))
    statements = _role_statements(template, "ScaleUpFunctionRole")
    (describe,) = [s for s in statements if "ec2:DescribeLaunchTemplates" in _listed(s["Action"])]
    assert describe["Sid"] == "DescribeLaunchTemplatesHasNoResourceLevelPermissions"


def test_scale_up_reads_and_writes_the_leases_table_it_did_before(template):
    leases = stand_in("LeasesTable")
    for key in (SCALE_UP_LEASE, PLAN_KEY):
        for action in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
            assert allowed(
                template,
                "ScaleUpFunctionRole",
                Request(action, leases, {"dynamodb:LeadingKeys": [key]}),
            )


def test_workers_stop_and_terminate_only_this_stages_workers(template):
    instance = _instance(template)
    worker, keys = _from(instance[0], instance)  # a worker on itself
    for action in ("ec2:StopInstances", "ec2:TerminateInstances"):
        assert allowed(template, "WorkerRole", Request(action, worker, keys))
        for other in (
            _instance(template, stage="facerec-other"),
            _instance(template, role="database"),
        ):
            assert not allowed(template, "WorkerRole", Request(action, *_from(other[0], other)))
        untagged = {k: v for k, v in keys.items() if not k.startswith("ec2:ResourceTag/")}
        assert not allowed(template, "WorkerRole", Request(action, worker, untagged))
    assert not allowed(template, "WorkerRole", Request("ec2:StartInstances", worker, keys))


def test_a_worker_stops_and_terminates_only_itself_not_another_worker_of_its_stage(template):
    """Issue 19: the tags alone let any worker end every worker of its stage. IAM puts the ARN of
    the instance whose instance-profile credentials signed the request in ec2:SourceInstanceARN;
    the statements allow a request only on that instance."""
    itself = _instance(template, instance_id="i-0000000000000aaaa")
    another = _instance(template, instance_id="i-0000000000000bbbb")
    for action in ("ec2:StopInstances", "ec2:TerminateInstances"):
        assert allowed(template, "WorkerRole", Request(action, *_from(itself[0], itself)))
        assert not allowed(template, "WorkerRole", Request(action, *_from(itself[0], another)))
        # Not signed with an instance's credentials: no source instance, nothing allowed.
        assert not allowed(template, "WorkerRole", Request(action, *itself))
    statements = _role_statements(template, "WorkerRole")
    ec2 = [s for s in statements if any(str(a).startswith("ec2:") for a in _listed(s["Action"]))]
    for statement in ec2:
        (source,) = statement["Condition"]["ArnEquals"].items()
        assert source[0] == "ec2:SourceInstanceARN"
        assert (
            resolve(source[1], template)
            == f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/${{ec2:InstanceID}}"
        )


def test_workers_may_touch_only_the_fleet_plan_item_of_the_leases_table(template):
    leases = stand_in("LeasesTable")
    plan = {"dynamodb:LeadingKeys": [PLAN_KEY]}
    for action in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
        assert allowed(template, "WorkerRole", Request(action, leases, plan))
        assert not allowed(
            template,
            "WorkerRole",
            Request(action, leases, {"dynamodb:LeadingKeys": [SCALE_UP_LEASE]}),
        )
        assert not allowed(
            template,
            "WorkerRole",
            Request(action, leases, {"dynamodb:LeadingKeys": [PLAN_KEY, SCALE_UP_LEASE]}),
        )
    for action in (
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:Scan",
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
    ):
        assert not allowed(template, "WorkerRole", Request(action, leases, plan))
    statements = _role_statements(template, "WorkerRole")
    (leases_statement,) = [
        s for s in statements if s["Resource"] == {"Fn::GetAtt": ["LeasesTable", "Arn"]}
    ]
    assert leases_statement["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [PLAN_KEY]}
    }


def test_the_api_reads_only_the_fleet_plan_item_of_the_leases_table(template):
    """The seed's route reads the live workers before it holds (chalicelib.outlook), nothing else
    there."""
    leases = stand_in("LeasesTable")
    assert allowed(
        template,
        "ApiFunctionRole",
        Request("dynamodb:GetItem", leases, {"dynamodb:LeadingKeys": [PLAN_KEY]}),
    )
    assert not allowed(
        template,
        "ApiFunctionRole",
        Request("dynamodb:GetItem", leases, {"dynamodb:LeadingKeys": [SCALE_UP_LEASE]}),
    )
    assert not allowed(
        template,
        "ApiFunctionRole",
        Request("dynamodb:UpdateItem", leases, {"dynamodb:LeadingKeys": [PLAN_KEY]}),
    )
