"""The one place that builds boto3 clients and hands them to chalicelib's classes.

app.py asks for `get_services()` inside handlers, never at import, so importing the app needs no
AWS configuration; a Lambda container builds its clients once, on its first request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from .api import JobsApi
from .auth import AdminAuth, admin_secret
from .batches import BatchesApi
from .compactions import Compactions
from .config import Settings
from .contract.fleet_plan import FleetPlanStore
from .enrollment import Enrollments
from .erasure import PersonEraser
from .events import UploadEventHandler
from .fleet_view import FleetView
from .jobs import JobStore
from .outlook import WaitOutlook
from .people import PeopleStore
from .scaling import Lease, ScaleUp
from .uploads import UploadSigner
from .workflow import WorkflowStarter

__all__ = ["Services", "calling_as", "get_services", "reset_services"]

SCALE_UP_LEASE = "scale-up"
# One Lambda container serves one request at a time; the local stack serves hundreds at once in
# threads that share these clients, and botocore's default pool of 10 connections then opens and
# discards a connection per call. Standard retries take throttling and dropped connections too.
_CLIENT_CONFIG = Config(max_pool_connections=100, retries={"mode": "standard", "max_attempts": 5})


@dataclass(frozen=True)
class Services:
    settings: Settings
    jobs_api: JobsApi
    batches: BatchesApi
    people: PeopleStore
    eraser: PersonEraser
    enrollments: Enrollments
    compactions: Compactions
    admin: AdminAuth
    upload_events: UploadEventHandler
    scale_up: ScaleUp
    fleet_view: FleetView

    @classmethod
    def from_settings(cls, settings: Settings, session: Any | None = None) -> Services:
        session = session or boto3.session.Session()
        region = settings.region
        s3 = session.client("s3", region_name=region, config=_CLIENT_CONFIG)
        dynamodb = session.resource("dynamodb", region_name=region, config=_CLIENT_CONFIG)
        jobs_table = dynamodb.Table(settings.jobs_table)
        jobs = JobStore(jobs_table)
        sqs = session.client("sqs", region_name=region, config=_CLIENT_CONFIG)
        ec2 = session.client("ec2", region_name=region, config=_CLIENT_CONFIG)
        people = PeopleStore(dynamodb.Table(settings.people_table))
        leases = dynamodb.Table(settings.leases_table)
        plan = FleetPlanStore(leases)
        compactions = Compactions(jobs, sqs, s3, settings)
        secret = admin_secret(settings, lambda: session.client("ssm", region_name=region))
        signer = UploadSigner(s3, settings)
        # The seed's waiting requests read the fleet's figures as often as their jobs' statuses.
        outlook = WaitOutlook(sqs, plan, settings, settings.compat_poll_seconds)
        jobs_api = JobsApi(jobs, signer, s3, settings, outlook)
        starter = WorkflowStarter(
            session.client("stepfunctions", region_name=region, config=_CLIENT_CONFIG),
            settings.state_machine_arn,
        )
        return cls(
            settings=settings,
            jobs_api=jobs_api,
            batches=BatchesApi(jobs, signer, s3, starter, settings),
            enrollments=Enrollments(people, jobs_api, settings),
            people=people,
            eraser=PersonEraser(people, jobs, compactions, s3, settings),
            compactions=compactions,
            admin=AdminAuth(secret),
            upload_events=UploadEventHandler(jobs, s3, starter, settings),
            scale_up=ScaleUp(sqs, ec2, Lease(leases, SCALE_UP_LEASE), plan, settings),
            fleet_view=FleetView(sqs, ec2, jobs_table, settings),
        )


_lock = threading.Lock()
# The services of the process's own credentials (key None) and of each session a caller named.
_services: dict[boto3.session.Session | None, Services] = {}
# Loading the service models is most of a client's cost; one session keeps them loaded across
# rebuilds. Clients are only ever created under _lock: a session is not safe to create clients
# from in several threads at once, and the local stack runs handlers in threads.
_session: boto3.session.Session | None = None
# Whose credentials a handler's calls carry. On Lambda each function is a process of its own with
# its role's credentials, and nothing sets this. The local stack runs every function in one
# process and names each one's session (local_service.roles), so each calls AWS as its own role.
_caller: ContextVar[boto3.session.Session | None] = ContextVar("facerec_caller", default=None)


@contextmanager
def calling_as(session: boto3.session.Session) -> Iterator[None]:
    """Handlers run in this context (this thread, until it ends) call AWS with `session`."""
    token = _caller.set(session)
    try:
        yield
    finally:
        _caller.reset(token)


def get_services() -> Services:
    """The services of the running function's credentials, built from the environment on first
    use."""
    global _session
    caller = _caller.get()
    with _lock:
        if caller not in _services:
            _session = _session or boto3.session.Session()
            _services[caller] = Services.from_settings(Settings.from_env(), caller or _session)
        return _services[caller]


def reset_services() -> None:
    """Forget the built services, so the next handler reads the environment again (tests, local
    stack)."""
    with _lock:
        _services.clear()
