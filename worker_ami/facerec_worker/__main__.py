"""`facerec-worker`: the process systemd starts on a worker instance (and the local fleet runs)."""

from __future__ import annotations

import sys

import boto3

from chalicelib.contract.logs import configure_json_logging

from .instance import Ec2Instance
from .settings import WorkerSettings
from .worker import Worker, install_signal_handlers


# The `service` of every line a worker logs (the functions' lines name their function).
SERVICE = "facerec-worker"


def main() -> int:
    settings = WorkerSettings.from_env()
    if not settings.jobs_queue_url:
        print("facerec-worker: FACEREC_JOBS_QUEUE_URL is not set (the launch template's user data "
              "writes it to /etc/facerec/worker.env)", file=sys.stderr)
        return 2
    session = boto3.session.Session(region_name=settings.region)
    instance = Ec2Instance.discover(session.client("ec2"), settings.instance_id)
    configure_json_logging(SERVICE, instance_id=instance.instance_id)
    dynamodb = session.resource("dynamodb")
    worker = Worker(
        settings,
        sqs=session.client("sqs"),
        s3=session.client("s3"),
        jobs_table=dynamodb.Table(settings.jobs_table),
        people_table=dynamodb.Table(settings.people_table),
        cloudwatch=session.client("cloudwatch"),
        instance=instance,
    )
    install_signal_handlers(worker)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
