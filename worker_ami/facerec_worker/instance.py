"""The EC2 instance a worker runs on: who it is, whether it is being reclaimed, how it ends or
stops."""

from __future__ import annotations

import logging
import time
from typing import Any

import requests

logger = logging.getLogger(__name__)

IMDS = "http://169.254.169.254/latest"
# How often to ask for a spot interruption notice: EC2 gives two minutes' warning.
SPOT_CHECK_SECONDS = 5.0


class InstanceMetadata:
    """IMDSv2 (the launch template requires tokens): a session token, then GETs with it."""

    def __init__(self, base_url: str = IMDS, timeout: float = 2.0) -> None:
        self._base = base_url
        self._timeout = timeout

    def get(self, path: str) -> str | None:
        token = requests.put(
            f"{self._base}/api/token",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"},
            timeout=self._timeout,
        )
        token.raise_for_status()
        response = requests.get(
            f"{self._base}/meta-data/{path}",
            headers={"X-aws-ec2-metadata-token": token.text},
            timeout=self._timeout,
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.text


class Ec2Instance:
    """On EC2 the id and spot notices come from the metadata service; the local fleet passes
    the id of the moto instance the process stands for, and there are no spot notices."""

    def __init__(self, ec2: Any, instance_id: str, metadata: InstanceMetadata | None) -> None:
        self._ec2 = ec2
        self.instance_id = instance_id
        self._metadata = metadata
        self._next_spot_check = 0.0

    @classmethod
    def discover(cls, ec2: Any, instance_id: str = "") -> Ec2Instance:
        if instance_id:
            return cls(ec2, instance_id, metadata=None)
        metadata = InstanceMetadata()
        return cls(ec2, metadata.get("instance-id") or "", metadata)

    def interruption_noticed(self) -> bool:
        if self._metadata is None or time.monotonic() < self._next_spot_check:
            return False
        self._next_spot_check = time.monotonic() + SPOT_CHECK_SECONDS
        try:
            return self._metadata.get("spot/instance-action") is not None
        except requests.RequestException:
            logger.warning("could not ask the metadata service for a spot notice", exc_info=True)
            return False

    def terminate(self) -> None:
        """End this instance; the launch template's tag scopes the permission to workers."""
        logger.info("terminating instance %s", self.instance_id)
        self._ec2.terminate_instances(InstanceIds=[self.instance_id])

    def stop(self, *, hibernate: bool) -> None:
        """Stop this instance into the warm pool: it then costs its EBS volume only. With
        hibernation (the launch template must enable it) its memory, the models loaded, is kept
        and this process carries on where it froze when the instance is started again."""
        logger.info(
            "stopping instance %s into the warm pool (hibernate: %s)", self.instance_id, hibernate
        )
        self._ec2.stop_instances(InstanceIds=[self.instance_id], Hibernate=hibernate)

    def is_running(self) -> bool:
        """Whether EC2 has this instance pending or running, as it has after a start."""
        reservations = self._ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"]
        return any(
            i["State"]["Name"] in ("pending", "running")
            for r in reservations
            for i in r["Instances"]
        )
