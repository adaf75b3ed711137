"""The workers of a running `make run` (local_service.process) as an operator sees them: their
instances in moto's EC2, and the worker process the service runs for each."""

from __future__ import annotations

import psutil

from local_service.process import RunningService


def worker_states(service: RunningService) -> dict[str, str]:
    """Every worker instance EC2 holds, any state: instance id -> state."""
    reservations = service.ec2().describe_instances(
        Filters=[{"Name": "tag:facerec:role", "Values": ["worker"]}]
    )["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def worker_processes(service: RunningService) -> dict[str, int]:
    """The worker processes alive under the service: instance id (the fleet names it in the
    worker's environment) -> pid. An ended one may linger as a zombie a moment: it counts as
    gone."""
    alive = {}
    for process in psutil.Process(service.process.pid).children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE and "facerec_worker" in " ".join(
                process.cmdline()
            ):
                alive[process.environ()["FACEREC_INSTANCE_ID"]] = process.pid
        except (psutil.Error, KeyError):
            continue
    return alive
