"""Which EC2 instances are the stage's workers: the one lookup the scale-up task and the admin view share."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ..contract import STAGE_TAG, WORKER_ROLE_TAG
from ..exceptions import ScalingError

__all__ = ["LIVE_STATES", "describe_states", "worker_states"]

# A worker counts from launch: a pending one takes jobs as soon as it has booted.
LIVE_STATES = ("pending", "running")


def worker_states(ec2: Any, stage_prefix: str) -> dict[str, str]:
    """Every worker of the stage EC2 lists, in any state, by instance id: the instances that carry
    the launch template's tags, so a worker launched by hand with the same tags counts too."""
    role_key, role_value = WORKER_ROLE_TAG
    return describe_states(
        ec2,
        [{"Name": f"tag:{role_key}", "Values": [role_value]}, {"Name": f"tag:{STAGE_TAG}", "Values": [stage_prefix]}],
        "could not list the workers",
    )


def describe_states(ec2: Any, filters: list[dict[str, Any]], failure: str) -> dict[str, str]:
    """The state of each instance DescribeInstances finds under `filters`, by instance id."""
    try:
        pages = ec2.get_paginator("describe_instances").paginate(Filters=filters)
        return {
            instance["InstanceId"]: instance["State"]["Name"]
            for page in pages
            for reservation in page["Reservations"]
            for instance in reservation["Instances"]
        }
    except ClientError as exc:
        raise ScalingError(failure, exc) from exc
