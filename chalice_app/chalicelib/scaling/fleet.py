"""Which EC2 instances are the stage's workers: the one lookup the scale-up task, the admin view and
the local fleet share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ..contract import STAGE_TAG, WORKER_ROLE_TAG
from ..exceptions import ScalingError

__all__ = [
    "LIVE_STATES",
    "POOLED_STATES",
    "WorkerInstance",
    "describe_instances",
    "worker_instances",
    "worker_states",
]

# A worker counts from launch: a pending one takes jobs as soon as it has booted.
LIVE_STATES = ("pending", "running")
# A warm-pool worker is stopped, or on its way there after it claimed its slot.
POOLED_STATES = ("stopping", "stopped")
# EC2 tags every instance launched from a launch template with the template's version.
_TEMPLATE_VERSION_TAG = "aws:ec2launchtemplate:version"


@dataclass(frozen=True)
class WorkerInstance:
    state: str
    # The launch template version it was launched from; None when launched without one.
    template_version: int | None = None


def worker_instances(ec2: Any, stage_prefix: str) -> dict[str, WorkerInstance]:
    """Every worker of the stage EC2 lists, in any state, by instance id: the instances that carry
    the launch template's tags, so a worker launched by hand with the same tags counts too."""
    role_key, role_value = WORKER_ROLE_TAG
    return describe_instances(
        ec2,
        [
            {"Name": f"tag:{role_key}", "Values": [role_value]},
            {"Name": f"tag:{STAGE_TAG}", "Values": [stage_prefix]},
        ],
        "could not list the workers",
    )


def worker_states(ec2: Any, stage_prefix: str) -> dict[str, str]:
    """The state of each of the stage's workers, by instance id."""
    return {
        instance_id: worker.state
        for instance_id, worker in worker_instances(ec2, stage_prefix).items()
    }


def describe_instances(
    ec2: Any, filters: list[dict[str, Any]], failure: str
) -> dict[str, WorkerInstance]:
    """Each instance DescribeInstances finds under `filters`, by instance id."""
    try:
        pages = ec2.get_paginator("describe_instances").paginate(Filters=filters)
        return {
            instance["InstanceId"]: WorkerInstance(
                instance["State"]["Name"], _template_version(instance)
            )
            for page in pages
            for reservation in page["Reservations"]
            for instance in reservation["Instances"]
        }
    except ClientError as exc:
        raise ScalingError(failure, exc) from exc


def _template_version(instance: dict[str, Any]) -> int | None:
    for tag in instance.get("Tags", []):
        if tag["Key"] == _TEMPLATE_VERSION_TAG and tag["Value"].isdigit():
            return int(tag["Value"])
    return None
