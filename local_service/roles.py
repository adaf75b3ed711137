"""Credentials for each part of the local stack, from AssumeRole on its own role in the template.

On AWS each function runs with its role's credentials, the workflow with its role's, and a worker
with its instance profile's. Here the operator (LOCAL_CREDENTIALS) assumes the same roles, so the
policies in infra/template.yaml are what moto enforces (local_service.iam_enforcement). A worker's
session is named by its instance id, as EC2 names an instance profile's sessions: its requests then
carry ec2:SourceInstanceARN, which the worker role's "only itself" statements read.

moto does not expire the credentials it issues; the sessions last the stack's lifetime.
"""

from __future__ import annotations

import warnings
from typing import Any

import boto3

from infra.names import FUNCTIONS

from .account import REGION
from .moto_patches import ignore_moto_template_warnings
from .stack import MotoEndpoint, Stack

__all__ = ["WORKER_ROLE", "PartCredentials", "function_role"]

WORKER_ROLE = "WorkerRole"
# The longest session AWS grants a role by default (MaxSessionDuration), for sessions as long as
# `make run`.
SESSION_SECONDS = 43_200


def function_role(function: str) -> str:
    """The template's logical id of the role Chalice's function `function` runs as."""
    (role,) = [f.role for f in FUNCTIONS if f.name == function]
    return role


class PartCredentials:
    """Assumes a deployed stack's roles with the operator's clients on `endpoint`."""

    def __init__(self, endpoint: MotoEndpoint, stack: Stack) -> None:
        self._endpoint = endpoint
        self._stack = stack
        # Looked up once a role: every worker the fleet starts assumes the same one.
        self._role_arns: dict[str, str] = {}

    def role_arn(self, logical_id: str) -> str:
        if logical_id not in self._role_arns:
            self._role_arns[logical_id] = self._look_up(logical_id)
        return self._role_arns[logical_id]

    def _look_up(self, logical_id: str) -> str:
        # All the stack's resources: moto's DescribeStackResource fails on a type it skipped, and
        # an in-process moto parses the template again, warning of what it skips.
        with warnings.catch_warnings():
            ignore_moto_template_warnings()
            resources = self._endpoint.client("cloudformation").describe_stack_resources(
                StackName=self._stack.prefix
            )["StackResources"]
        (name,) = [
            resource["PhysicalResourceId"]
            for resource in resources
            if resource.get("LogicalResourceId") == logical_id
        ]
        return self._endpoint.client("iam").get_role(RoleName=name)["Role"]["Arn"]

    def environment(self, logical_id: str, session_name: str) -> dict[str, str]:
        """AWS_* variables with a session of role `logical_id`, for a process of that part."""
        credentials = self._endpoint.client("sts").assume_role(
            RoleArn=self.role_arn(logical_id),
            RoleSessionName=session_name,
            DurationSeconds=SESSION_SECONDS,
        )["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }

    def session(self, logical_id: str, session_name: str) -> Any:
        """A boto3 session of role `logical_id`, for a part that runs in this process."""
        environment = self.environment(logical_id, session_name)
        return boto3.session.Session(
            aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=environment["AWS_SESSION_TOKEN"],
            region_name=REGION,
        )
