"""`facerec-worker`: the process systemd starts on a worker instance (and the local fleet runs)."""

from __future__ import annotations

import logging
import sys

import boto3

from .instance import Ec2Instance
from .settings import WorkerSettings
from .worker import Worker, install_signal_handlers


def main() -> int:
    settings = WorkerSettings.from_env()
    if not settings.jobs_queue_url:
        print("facerec-worker: FACEREC_JOBS_QUEUE_URL is not set (the launch template's user data "
              "writes it to /etc/facerec/worker.env)", file=sys.stderr)
        return 2
    session = boto3.session.Session(region_name=settings.region)
    instance = Ec2Instance.discover(session.client("ec2"), settings.instance_id)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {instance.instance_id} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("transitions").setLevel(logging.WARNING)
    dynamodb = session.resource("dynamodb")
    worker = Worker(
        settings,
        sqs=session.client("sqs"),
        s3=session.client("s3"),
        jobs_table=dynamodb.Table(settings.jobs_table),
        people_table=dynamodb.Table(settings.people_table),
        instance=instance,
    )
    install_signal_handlers(worker)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
