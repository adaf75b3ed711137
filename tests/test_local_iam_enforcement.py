"""The local stack authorizes each part's calls against its role in the template as AWS does:
scoped resources, conditions on tags, leading keys and the calling instance, and RunInstances
through the launch template (local_service.iam_enforcement). Where moto's own evaluator reads a
policy otherwise, a test here says so."""

from __future__ import annotations

import pytest
import requests
from botocore.exceptions import ClientError
from moto.iam.access_control import IAMPolicyStatement, PermissionResult

from chalicelib.contract.fleet_plan import PLAN_KEY
from chalicelib.services import SCALE_UP_LEASE
from local_service.iam_policy import Request, allowed
from local_service.roles import WORKER_ROLE, PartCredentials, function_role

pytestmark = pytest.mark.control_plane


def _denied(call, *args, **kwargs) -> bool:
    try:
        call(*args, **kwargs)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        return code in ("AccessDenied", "AccessDeniedException")
    return False


def _as(local_stack, stack, role: str, session_name: str, service: str):
    session = PartCredentials(local_stack, stack).session(role, session_name)
    return session.client(service, endpoint_url=local_stack.endpoint_url)


def _workers(local_stack, stack, count: int) -> list[str]:
    launched = local_stack.client("ec2").run_instances(
        LaunchTemplate={"LaunchTemplateName": stack.outputs["WorkerLaunchTemplateName"]},
        MinCount=count,
        MaxCount=count,
    )
    return [instance["InstanceId"] for instance in launched["Instances"]]


def test_the_api_reads_the_fleet_plan_item_but_not_the_scale_up_lease(local_stack, stack):
    dynamodb = _as(local_stack, stack, function_role("api_handler"), "api", "dynamodb")
    table = stack.outputs["LeasesTableName"]
    key_name = local_stack.client("dynamodb").describe_table(TableName=table)["Table"]["KeySchema"][
        0
    ]["AttributeName"]
    dynamodb.get_item(TableName=table, Key={key_name: {"S": PLAN_KEY}})
    assert _denied(dynamodb.get_item, TableName=table, Key={key_name: {"S": SCALE_UP_LEASE}})


def test_a_worker_terminates_itself_but_not_another_worker(local_stack, stack):
    itself, other = _workers(local_stack, stack, 2)
    ec2 = _as(local_stack, stack, WORKER_ROLE, itself, "ec2")
    assert _denied(ec2.terminate_instances, InstanceIds=[other])
    ec2.terminate_instances(InstanceIds=[itself])


def test_scale_up_launches_only_through_the_worker_launch_template(local_stack, stack):
    ec2 = _as(local_stack, stack, function_role("scale_up"), "scale-up", "ec2")
    template = {"LaunchTemplateName": stack.outputs["WorkerLaunchTemplateName"]}
    assert ec2.run_instances(LaunchTemplate=template, MinCount=1, MaxCount=1)["Instances"]
    assert _denied(ec2.run_instances, ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1)
    assert _denied(
        ec2.run_instances,
        LaunchTemplate=template,
        InstanceType="p4d.24xlarge",
        MinCount=1,
        MaxCount=1,
    )


def test_the_upload_handler_may_not_read_the_results(local_stack, stack):
    s3 = _as(local_stack, stack, function_role("on_upload_events"), "upload-events", "s3")
    assert _denied(s3.get_object, Bucket=stack.outputs["OutputBucketName"], Key="results/x.json")


def test_a_request_signed_by_nobody_is_refused(local_stack, stack):
    url = f"{local_stack.endpoint_url}/{stack.outputs['InputBucketName']}/uploads/x.jpg"
    assert requests.put(url, data=b"photo", timeout=10).status_code == 403


def test_moto_ignores_a_condition_it_has_no_value_for_and_matches_scoped_resources_to_star():
    """Why moto's own check (INITIAL_NO_AUTH_ACTION_COUNT) is not used: it grants the API's
    listing of gallery/ for any prefix, and never matches a statement scoped to a table, for it
    authorizes DynamoDB on Resource "*"."""
    listing = {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::output",
        "Condition": {"StringLike": {"s3:prefix": ["gallery/*"]}},
    }
    read = {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:jobs"}
    bucket = "arn:aws:s3:::output"
    assert IAMPolicyStatement(listing).is_action_permitted("s3:ListBucket", bucket) == (
        PermissionResult.PERMITTED
    )
    assert IAMPolicyStatement(read).is_action_permitted("dynamodb:GetItem", "*") == (
        PermissionResult.NEUTRAL
    )
    uploads = {"s3:prefix": "uploads/"}
    assert not allowed([listing], Request("s3:ListBucket", bucket, uploads))
    assert allowed([read], Request("dynamodb:GetItem", "arn:jobs"))
