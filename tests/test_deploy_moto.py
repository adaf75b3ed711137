"""The stage `make deploy` ships, deployed into moto with infra.deploy's own functions, runs a job
from upload to queued-with-a-worker, and `make destroy`'s teardown leaves nothing behind.

moto has no SAM transform: the tests run the real one (aws-sam-translator) on the uploaded
template, and moto's CloudFormation deploys its output with two changes (no REST API deployment,
the SQS event source disabled: tests/deploy_support.for_moto says why). The functions, their SQS
event source and schedule, the alarms' topic, the dashboard and the log groups are moto's own;
moto's CloudFormation has no AWS::CloudWatch::Alarm, so the alarms are put through the API from the
same template. The app runs in-process with exactly the environment the stack gives its functions,
resolved in moto.
"""

from __future__ import annotations

import json

import pytest
from control_plane import (
    create_job,
    deliver_upload_events,
    job_item,
    post_json,
    upload,
    wait_for_execution,
    worker_instances,
)
from deploy_support import for_moto, package, put_alarms, sam_transform

from chalicelib.contract import JobStatus
from chalicelib.contract.telemetry import worker_log_group
from infra.deploy import (
    Stage,
    create_or_update_stack,
    ensure_admin_token,
    ensure_artifacts_bucket,
    stack_parameters,
    teardown,
    template_url,
    upload_package,
)
from infra.names import APP_ENVIRONMENT, FUNCTIONS, SCALING_ENVIRONMENT
from local_service.account import LOCAL_CREDENTIALS, REGION
from local_service.cloudformation import (
    apply_bucket_settings,
    create_state_machines_via_api,
    resolve_in_stack,
)
from local_service.stack import Stack, scale_up_function_name

STAGE = Stage.of("dev", REGION, "123456789012")  # moto's account
# Another stage for the second deploy: moto's teardown leaves the first's managed policy behind.
PROD = Stage.of("prod", REGION, "123456789012")
AMI = "ami-0123456789abcdef0"


def _powertools_layer_in_moto(local_stack) -> str:
    """A parameter in place of AWS's public one, which moto lacks (moto's CloudFormation does not
    attach the functions' layers, so the value only has to look like a layer's ARN)."""
    parameter = "/facerec-tests/powertools-layer"
    arn = (
        f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:1"
    )
    local_stack.client("ssm").put_parameter(
        Name=parameter, Value=arn, Type="String", Overwrite=True
    )
    return parameter


def _deploy_into_moto(local_stack, package_dir, stage=STAGE, extra=None):
    """What infra.deploy.deploy does, on moto: artifacts bucket, upload, stack, admin token."""
    s3 = local_stack.client("s3")
    bucket = ensure_artifacts_bucket(s3, stage)
    uploaded = json.loads(
        s3.get_object(
            Bucket=bucket, Key=upload_package(s3, REGION, bucket, package_dir).rsplit("/", 1)[1]
        )["Body"].read()
    )
    codes = {
        json.dumps(uploaded["Resources"][f.logical_id]["Properties"]["CodeUri"]) for f in FUNCTIONS
    }
    (code,) = map(json.loads, codes)  # one zip for every function, and it is there
    assert s3.head_object(Bucket=code["Bucket"], Key=code["Key"])["ContentLength"] > 0

    transformed = sam_transform(uploaded, local_stack.client("iam"))
    assert not [
        n for n, r in transformed["Resources"].items() if r["Type"].startswith("AWS::Serverless::")
    ]
    template = for_moto(transformed)
    # moto resolves an SSM-typed parameter's default even when a value is passed, so the default
    # itself names the stand-in.
    template["Parameters"]["PowertoolsLayerArn"]["Default"] = _powertools_layer_in_moto(local_stack)
    s3.put_object(Bucket=bucket, Key="moto-template.json", Body=json.dumps(template).encode())
    parameters = stack_parameters(stage, AMI, extra or {})
    outputs = create_or_update_stack(
        local_stack.client("cloudformation"),
        stage.stack_name,
        template_url(REGION, bucket, "moto-template.json"),
        parameters,
        delay_seconds=1,
    )
    # What moto's CloudFormation skips (infra/stack.py says why), from the same template.
    apply_bucket_settings(local_stack, stage.stack_name, template, parameters)
    create_state_machines_via_api(local_stack, stage.stack_name, template, parameters)
    put_alarms(local_stack, stage.stack_name, template, parameters)
    ensure_admin_token(local_stack.client("ssm"), stage)
    return template, parameters, outputs


# moto's CloudFormation has no AWS::SQS::QueuePolicy (its S3 notifies the queue without one), no
# AWS::CloudWatch::Alarm (put through the API instead), nor the other types
# local_service.moto_patches.ignore_moto_template_warnings names.
@pytest.mark.filterwarnings(
    "ignore:Tried to parse AWS.*(QueuePolicy|Alarm|MetricFilter|UsagePlan|UsagePlanKey|ApiKey|"
    "Budget|TopicPolicy|BucketPolicy) but:UserWarning"
)
def test_the_packaged_stage_runs_a_job_in_moto_and_destroy_leaves_nothing(
    local_stack, app_module, settings_env, client, tmp_path, jpeg_bytes
):
    package_dir = tmp_path / "dev"
    package("dev", package_dir)
    local_stack.router.register(scale_up_function_name(STAGE.prefix), app_module.scale_up)
    try:
        template, parameters, outputs = _deploy_into_moto(local_stack, package_dir)
        functions = {f.name: template["Resources"][f.logical_id]["Properties"] for f in FUNCTIONS}
        environment = resolve_in_stack(
            local_stack,
            STAGE.stack_name,
            template,
            parameters,
            functions["api_handler"]["Environment"]["Variables"],
        )
        assert {name: environment[name] for name in APP_ENVIRONMENT} == {
            name: outputs[key] for name, key in APP_ENVIRONMENT.items()
        }
        assert environment["FACEREC_STATE_MACHINE_ARN"] == outputs["StateMachineArn"]
        scale_up = resolve_in_stack(
            local_stack,
            STAGE.stack_name,
            template,
            parameters,
            functions["scale_up"]["Environment"]["Variables"],
        )
        assert {name: scale_up[name] for name in SCALING_ENVIRONMENT} == {
            name: outputs[key] for name, key in SCALING_ENVIRONMENT.items()
        }
        settings_env(
            {
                **LOCAL_CREDENTIALS,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": local_stack.endpoint_url,
                "FACEREC_ADMIN_TOKEN": "",
                **environment,
            }
        )
        stack = Stack(
            prefix=STAGE.prefix,
            outputs=outputs,
            endpoint_url=local_stack.endpoint_url,
            parameters=parameters,
        )

        # The admin token is the SecureString deploy made, read through the parameter the stack
        # names.
        token = local_stack.client("ssm").get_parameter(
            Name=STAGE.admin_token_parameter, WithDecryption=True
        )["Parameter"]["Value"]
        assert (
            post_json(
                client, "/people", {"person_id": "obama"}, headers={"X-Admin-Token": token}
            ).status_code
            == 201
        )
        assert (
            post_json(
                client, "/people", {"person_id": "biden"}, headers={"X-Admin-Token": "wrong"}
            ).status_code
            == 403
        )

        job = create_job(client)
        upload(job, jpeg_bytes)
        assert deliver_upload_events(local_stack, stack, app_module) >= 1
        execution = wait_for_execution(
            local_stack.client("stepfunctions"), outputs["StateMachineArn"], job["job_id"]
        )
        assert execution["status"] == "SUCCEEDED", execution
        assert job_item(local_stack, stack, job["job_id"])["status"] == JobStatus.QUEUED.value
        (worker,) = worker_instances(local_stack, stack)
        assert worker["ImageId"] == AMI
        # moto does not copy the profile onto instances; the launch template carries it.
        (version,) = local_stack.client("ec2").describe_launch_template_versions(
            LaunchTemplateId=outputs["WorkerLaunchTemplateId"]
        )["LaunchTemplateVersions"]
        profile = local_stack.client("iam").get_instance_profile(
            InstanceProfileName=f"{STAGE.prefix}-worker"
        )
        assert (
            version["LaunchTemplateData"]["IamInstanceProfile"]["Arn"]
            == profile["InstanceProfile"]["Arn"]
        )
        # No hibernation by default: the AMI's own root volume, encrypted.
        assert version["LaunchTemplateData"]["HibernationOptions"] == {"Configured": False}
        (root,) = version["LaunchTemplateData"]["BlockDeviceMappings"]
        assert root["Ebs"]["Encrypted"] is True
        # The workers' own group, which lets nothing in.
        (group_id,) = version["LaunchTemplateData"]["SecurityGroupIds"]
        (group,) = local_stack.client("ec2").describe_security_groups(GroupIds=[group_id])[
            "SecurityGroups"
        ]
        assert group["IpPermissions"] == []
    finally:
        teardown(local_stack, STAGE, delay_seconds=1)

    cfn, s3 = local_stack.client("cloudformation"), local_stack.client("s3")
    assert all(
        s["StackName"] != STAGE.stack_name or s["StackStatus"] == "DELETE_COMPLETE"
        for s in cfn.list_stacks()["StackSummaries"]
    )
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert not buckets & {
        outputs["InputBucketName"],
        outputs["OutputBucketName"],
        STAGE.artifacts_bucket,
    }
    assert not local_stack.client("ssm").get_parameters(Names=[STAGE.admin_token_parameter])[
        "Parameters"
    ]
    assert not worker_instances(local_stack, stack)
    teardown(local_stack, STAGE, delay_seconds=1)  # again: nothing left, and that is no error


@pytest.mark.filterwarnings(
    "ignore:Tried to parse AWS.*(QueuePolicy|Alarm|MetricFilter|UsagePlan|UsagePlanKey|ApiKey|"
    "Budget|TopicPolicy|BucketPolicy) but:UserWarning"
)
def test_the_packaged_stage_has_alarms_a_dashboard_a_log_group_and_a_dead_letter_trips_the_alarm(
    local_stack, tmp_path
):
    """moto computes no AWS/SQS metrics and evaluates no alarms: what can be checked is that the
    alarm watches this stack's DLQ by the metric SQS reports for it, and that a dead-lettered job
    takes the queue's count, which that metric reports, past the alarm's threshold."""
    package_dir = tmp_path / "prod"
    package("prod", package_dir)
    try:
        # The other way of the hibernation condition, and the scaling settings given.
        settings = {
            "WorkerHibernation": "true",
            "WarmPoolSize": "2",
            "MinWorkers": "1",
            "DrainObjectiveSeconds": "30",
        }
        _template, _parameters, outputs = _deploy_into_moto(
            local_stack, package_dir, PROD, settings
        )
        (version,) = local_stack.client("ec2").describe_launch_template_versions(
            LaunchTemplateId=outputs["WorkerLaunchTemplateId"]
        )["LaunchTemplateVersions"]
        assert version["LaunchTemplateData"]["HibernationOptions"] == {"Configured": True}
        (root,) = version["LaunchTemplateData"]["BlockDeviceMappings"]
        assert root["Ebs"]["Encrypted"] is True
        assert (
            outputs["WarmPoolSizeSetting"],
            outputs["MinWorkersSetting"],
            outputs["DrainObjectiveSecondsSetting"],
        ) == ("2", "1", "30")
        cloudwatch, sqs = local_stack.client("cloudwatch"), local_stack.client("sqs")
        alarms = {
            a["AlarmName"]: a
            for a in cloudwatch.describe_alarms(AlarmNamePrefix=f"{PROD.prefix}-")["MetricAlarms"]
        }
        assert set(alarms) == {
            f"{PROD.prefix}-{name}"
            for name in (
                "jobs-dead-letters",
                "upload-events-dead-letters",
                "jobs-waiting",
                "workflow-failed",
                "scale-up-errors",
                "gallery-quarantine",
            )
        }
        assert {tuple(a["AlarmActions"]) for a in alarms.values()} == {(outputs["AlarmTopicArn"],)}
        topics = {t["TopicArn"] for t in local_stack.client("sns").list_topics()["Topics"]}
        assert outputs["AlarmTopicArn"] in topics
        # AlarmEmail is empty by default: nobody is subscribed until a deployer names an address.
        assert not local_stack.client("sns").list_subscriptions_by_topic(
            TopicArn=outputs["AlarmTopicArn"]
        )["Subscriptions"]

        dashboard = json.loads(cloudwatch.get_dashboard(DashboardName=PROD.prefix)["DashboardBody"])
        titles = {w["properties"]["title"] for w in dashboard["widgets"]}
        assert {"Jobs queue", "Fleet", "Upload to result (s)", "Jobs done and failed"} <= titles
        (group,) = local_stack.client("logs").describe_log_groups(
            logGroupNamePrefix=worker_log_group(PROD.prefix)
        )["logGroups"]
        assert (group["logGroupName"], group["retentionInDays"]) == (
            outputs["WorkerLogGroupName"],
            14,
        )

        dead_letters = alarms[f"{PROD.prefix}-jobs-dead-letters"]
        dlq_url = outputs["JobsDeadLetterQueueUrl"]
        assert (dead_letters["Namespace"], dead_letters["MetricName"]) == (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
        )
        assert dead_letters["Dimensions"] == [
            {"Name": "QueueName", "Value": dlq_url.rsplit("/", 1)[1]}
        ]

        def visible() -> int:
            return int(
                sqs.get_queue_attributes(
                    QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]["ApproximateNumberOfMessages"]
            )

        assert not visible() > dead_letters["Threshold"]
        # A job's message that no worker could finish: received maxReceiveCount times, never
        # deleted.
        jobs_url = outputs["JobsQueueUrl"]
        sqs.send_message(QueueUrl=jobs_url, MessageBody=json.dumps({"job_id": "dead-lettered"}))
        for _ in range(4):
            sqs.receive_message(QueueUrl=jobs_url, VisibilityTimeout=0, WaitTimeSeconds=0)
        assert visible() == 1 and visible() > dead_letters["Threshold"]
        assert dead_letters["ComparisonOperator"] == "GreaterThanThreshold"
    finally:
        teardown(local_stack, PROD, delay_seconds=1)
