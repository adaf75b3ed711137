"""`facerec-worker`: the process systemd starts on a worker instance (and the local fleet runs).

A cold burst waits for this process's boot, and most of the boot is the engine: torch and the
models. So the engine loads on a thread of its own from the start, the AWS setup (boto3, the
clients, the instance's identity) runs meanwhile on this one, and the first poll follows the
engine at once: never earlier, so the worker holds no message it cannot work on yet
(worker_ami/README.md, "Boot to first poll").
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

from .boot import BootTimes, LazyClient, Loading
from .settings import WorkerSettings

if TYPE_CHECKING:
    from .engine import Recognizer


# The `service` of every line a worker logs (the functions' lines name their function).
SERVICE = "facerec-worker"


def main() -> int:
    if os.environ.get(
        "FACEREC_COUNT_AWS_CALLS"
    ):  # make bench-cost: count this process's AWS calls (bench/aws_calls.py)
        importlib.import_module("bench.aws_calls").install("worker")
    boot = BootTimes()
    settings = WorkerSettings.from_env()
    if not settings.jobs_queue_url:
        print(
            "facerec-worker: FACEREC_JOBS_QUEUE_URL is not set (the launch template's user data "
            "writes it to /etc/facerec/worker.env)",
            file=sys.stderr,
        )
        return 2
    engine = Loading(lambda: _load_engine(boot), name="engine-load")
    # Imported here, after the engine's thread has started, so that they overlap its imports.
    import boto3

    from chalicelib.contract.logs import configure_json_logging

    from .instance import Ec2Instance

    session = boto3.session.Session(region_name=settings.region)
    instance = Ec2Instance.discover(LazyClient(lambda: session.client("ec2")), settings.instance_id)
    configure_json_logging(SERVICE, instance_id=instance.instance_id)
    dynamodb = session.resource("dynamodb")
    sqs, s3 = session.client("sqs"), session.client("s3")
    boot.log_at_first_poll(sqs)
    # The loop imports the engine package: this waits until the engine's thread has imported it.
    from .worker import Worker, install_signal_handlers

    boot.mark("imports_s")
    worker = Worker(
        settings,
        sqs=sqs,
        s3=s3,
        jobs_table=dynamodb.Table(settings.jobs_table),
        people_table=dynamodb.Table(settings.people_table),
        leases_table=dynamodb.Table(settings.leases_table),
        instance=instance,
        engine_factory=engine,
    )
    install_signal_handlers(worker)
    worker.run()
    return 0


def _load_engine(boot: BootTimes) -> Recognizer:
    from .engine import Recognizer

    engine = Recognizer.from_config()
    boot.mark("engine_s")
    return engine


if __name__ == "__main__":
    sys.exit(main())
