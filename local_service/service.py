"""Start and stop everything `make run` runs, in order, and nothing else.

moto server, in a process of its own (S3, SQS, DynamoDB, EC2, Step Functions executing the
  real ASL), where moto's lambda:invoke is answered by the app's scale-up handler
  └─ infra/template.yaml deployed into it, as on AWS
Chalice app, served over HTTP (the API and the web page) behind a stand-in for API Gateway's
  key check and usage plan (gateway)
upload events: S3 → SQS notifications handed to the app's handler (Lambda's event source)
schedule: the app's one-minute safety-net scale-up and its gallery compaction, fired by timers
  (EventBridge's part)
fleet: one worker process per worker instance in moto's EC2
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from chalice.local import LocalDevServer

from chalicelib.config import Settings
from chalicelib.services import calling_as
from facerec_client import LOCAL_API_KEY

from .account import ACCOUNT_ID, REGION
from .chalice_app import CHALICE_PROJECT, load_chalice_app
from .fleet import LocalFleet, hibernates
from .gateway import LocalUsagePlan, UsagePlanLimits, keyed_server
from .lambda_stand_ins import pump_sqs_to_handler
from .moto_process import MotoProcess
from .roles import WORKER_ROLE, PartCredentials, function_role
from .stack import Stack, free_port

logger = logging.getLogger(__name__)

# How long the service's own threads (upload events, schedules) get, all together, to see the
# stop and return. They are daemons: one still waiting on moto (an answer slow under a burst)
# ends with the process. Joined one by one with a grace each, a burst once made a stop take
# over a minute.
THREADS_GRACE_SECONDS = 3.0


@dataclass(frozen=True)
class LocalOptions:
    """What `make run` can be told, through FACEREC_LOCAL_* variables or the command line."""

    host: str = "127.0.0.1"
    api_port: int = 8000  # 0: any free port
    moto_port: int = 0  # 0: any free port
    stage_prefix: str = "facerec-local"
    # Each worker process holds a model (about 1 GB): a laptop's fleet stays small.
    max_workers: int = 2
    idle_seconds: float = 30.0
    # Leaving workers stop into a warm pool of this many instances (their processes end, or are
    # paused when `hibernate`), and the scale-up task starts them again before it launches new ones.
    warm_pool_size: int = 0
    hibernate: bool = False
    admin_token: str = "local-admin-token"
    # The one API key the local gateway accepts (X-Api-Key), with the stage's usage plan's limits.
    api_key: str = LOCAL_API_KEY
    # The course's workload generator posts to `POST /` without a key: open here unless told.
    open_seed_route: bool = True
    # None: the stage's usage plan's limits (the template's); a benchmark of the stack's own
    # capacity sets limits no client reaches.
    usage_plan: UsagePlanLimits | None = None
    schedule_seconds: float = 60.0
    # Lambda's SQS event source starts with 5 batches at once and adds more while the queue grows.
    upload_event_pollers: int = 8
    # The seed's `POST /` holds a request until its answer. On AWS a held request holds a Lambda
    # function, so the route holds a few seconds at most (chalicelib.config); here no gateway or
    # function stands in front, and the course's clients wait for the answer itself, however long
    # a burst of 1000 or a cold fleet's boot takes.
    compat_wait_seconds: float = 1800.0
    # Every waiting request shares one batched read per poll, so polling often costs little.
    compat_poll_seconds: float = 0.2
    log_dir: Path = CHALICE_PROJECT.parent / "out" / "local"
    worker_env: dict[str, str] = field(default_factory=dict)


class LocalService:
    def __init__(self, options: LocalOptions) -> None:
        if options.api_port == 0:
            options = replace(options, api_port=free_port(options.host))
        self.options = options
        self.moto: MotoProcess | None = None
        self.stack: Stack | None = None
        self.parts: PartCredentials | None = None
        self.fleet: LocalFleet | None = None
        self.app: ModuleType | None = None
        self.usage_plan: LocalUsagePlan | None = None
        self._api: LocalDevServer | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    @property
    def api_url(self) -> str:
        return f"http://{self.options.host}:{self.options.api_port}"

    def start(self) -> LocalService:
        options = self.options
        self.moto = MotoProcess(
            options.host,
            options.moto_port or None,
            stage_prefix=options.stage_prefix,
            log_dir=options.log_dir,
        ).start()
        self.stack = self.moto.deploy(options.stage_prefix)
        # Each part calls moto as its own role in the template (local_service.roles): the API and
        # the compaction schedule as the API's, with the process's credentials; the upload events
        # and the scale-up schedule in their threads; scale_up in moto's process; each worker as
        # its instance.
        self.parts = PartCredentials(self.moto, self.stack)
        environment = {
            **self.stack.app_environment(),
            **self.parts.environment(function_role("api_handler"), "api"),
            "FACEREC_MAX_WORKERS": str(options.max_workers),
            "FACEREC_WARM_POOL_SIZE": str(options.warm_pool_size),
            "FACEREC_ADMIN_TOKEN": options.admin_token,
            "FACEREC_COMPAT_WAIT_SECONDS": str(options.compat_wait_seconds),
            "FACEREC_COMPAT_POLL_SECONDS": str(options.compat_poll_seconds),
            # Read when the app is imported: its routes' api_key_required (chalicelib.callers).
            "FACEREC_OPEN_SEED_ROUTE": str(options.open_seed_route).lower(),
        }
        self.moto.write_function_environment(
            {**environment, **self.parts.environment(function_role("scale_up"), "scale-up")}
        )
        os.environ.update(environment)
        self.app = load_chalice_app()

        self.usage_plan = LocalUsagePlan(
            [options.api_key], options.usage_plan or UsagePlanLimits.from_template()
        )
        self._api = keyed_server(
            self.app.app, CHALICE_PROJECT, options.host, options.api_port, self.usage_plan
        )
        self._spawn("api", self._api.serve_forever)
        upload_events = self.parts.session(function_role("on_upload_events"), "upload-events")
        for poller in range(options.upload_event_pollers):
            self._spawn(
                f"upload-events-{poller}",
                lambda: self._pump_upload_events(upload_events),
                upload_events,
            )
        self._spawn(
            "schedule",
            lambda: self._fire_schedule(
                "scale-up", self.app.scale_up_every_minute, options.schedule_seconds
            ),
            self.parts.session(function_role("scale_up_every_minute"), "scale-up-schedule"),
        )
        compaction_seconds = Settings.from_env().compaction_minutes * 60
        self._spawn(
            "compaction",
            lambda: self._fire_schedule("compaction", self.app.compact_gallery, compaction_seconds),
        )
        cores = os.cpu_count() or 1
        worker_env = {
            **os.environ,
            **environment,
            # `--idle-seconds` is the idle time, whatever the waits between photos were: the
            # idle rule's longer waits for a trickle are for EC2's boot times, not these.
            "FACEREC_WORKER_IDLE_SECONDS": str(options.idle_seconds),
            "FACEREC_WORKER_IDLE_MAX_SECONDS": str(options.idle_seconds),
            "FACEREC_WORKER_HIBERNATE": str(options.hibernate).lower(),
            "FACEREC_WORKER_POLL_WAIT_SECONDS": "2",
            # The fleet's workers share this machine's cores.
            "FACEREC_THREADS": str(max(1, cores // options.max_workers)),
            **options.worker_env,
        }
        # A stopped worker's process is paused when the stage hibernates, as the machine would be.
        self.fleet = LocalFleet(
            self.moto.client("ec2"),
            options.stage_prefix,
            worker_env,
            options.log_dir / "workers",
            hibernate=hibernates(worker_env),
            credentials=lambda instance_id: self.parts.environment(WORKER_ROLE, instance_id),
        ).start()
        return self

    def stop(self) -> None:
        """Everything started, in reverse order; safe to call twice."""
        self._stop.set()
        if self.fleet is not None:
            self.fleet.stop()
        if self._api is not None:
            self._api.shutdown()
            self._api.server.server_close()
            self._api = None
        deadline = time.monotonic() + THREADS_GRACE_SECONDS
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    def _pump_upload_events(self, session: Any) -> None:
        # Lambda's event source receives and deletes with the function's role, as here.
        sqs = session.client("sqs", endpoint_url=self.moto.endpoint_url)
        outputs = self.stack.outputs
        while not self._stop.is_set():
            try:
                # Long polling, as Lambda's event source does: an upload is handled the moment its
                # event arrives, and an idle poller costs one request a second.
                pump_sqs_to_handler(
                    sqs,
                    outputs["UploadEventsQueueUrl"],
                    self.app.on_upload_events,
                    outputs["UploadEventsQueueArn"],
                    wait_seconds=1,
                )
            except Exception:
                # The batch stays on the queue and comes back, as with Lambda's event source.
                logger.exception(
                    "upload events: the handler failed; the batch will be delivered again"
                )
                self._stop.wait(1)

    def _fire_schedule(self, name: str, handler: Any, every_seconds: float) -> None:
        """What EventBridge does for @app.schedule on AWS: a CloudWatch event at each tick."""
        while not self._stop.wait(every_seconds):
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT_ID,
                "time": datetime.now(UTC).isoformat(),
                "region": REGION,
                "resources": [],
                "detail": {},
            }
            try:
                handler(event, None)
            except Exception:
                logger.exception("the scheduled %s failed; the next tick tries again", name)

    def _spawn(self, name: str, target: Any, caller: Any | None = None) -> None:
        """A daemon thread running `target`; the handlers it calls call AWS as `caller` (a role's
        session) when given."""

        def run() -> None:
            if caller is None:
                target()
                return
            with calling_as(caller):
                target()

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
