"""Every setting the control plane reads, from the environment, in one place.

Chalice reads decorator arguments (the upload-events queue name) when app.py is imported, so a
missing variable must never crash the import: each one has a default that works locally.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

__all__ = ["Settings", "env_float", "env_int"]

_DEFAULT_PREFIX = "facerec-dev"


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    """An integer setting; unset or blank means the default (the worker's settings use it too)."""
    raw = env.get(name, "")
    return int(raw) if raw.strip() else default


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    return float(raw) if raw.strip() else default


@dataclass(frozen=True)
class Settings:
    """The deployed resources' names and the service's limits.

    Resource names default to what infra/template.yaml creates for the stage prefix, so a stack
    deployed with the default prefix needs no variables at all.
    """

    stage_prefix: str = _DEFAULT_PREFIX
    region: str = "us-east-1"
    input_bucket: str = f"{_DEFAULT_PREFIX}-input"
    output_bucket: str = f"{_DEFAULT_PREFIX}-output"
    jobs_table: str = f"{_DEFAULT_PREFIX}-jobs"
    people_table: str = f"{_DEFAULT_PREFIX}-people"
    leases_table: str = f"{_DEFAULT_PREFIX}-leases"
    jobs_queue_url: str = ""
    upload_events_queue: str = f"{_DEFAULT_PREFIX}-upload-events"
    state_machine_arn: str = ""
    worker_launch_template: str = f"{_DEFAULT_PREFIX}-worker"
    # Uploads: a presigned POST lives this long and accepts photos up to this size, of these types.
    upload_expiry_minutes: int = 15
    max_upload_bytes: int = 10 * 1024 * 1024
    allowed_content_types: tuple[str, ...] = ("image/jpeg", "image/png", "image/webp")
    job_ttl_days: int = 7
    # A claim on an upload older than this belongs to an event handler that died before starting
    # the workflow; it matches the upload-events queue's visibility timeout (infra/template.yaml).
    upload_claim_stale_seconds: int = 60
    # Scaling: one worker per this many waiting or in-flight messages, never more than max_workers.
    target_backlog_per_worker: int = 50
    max_workers: int = 20
    # At most one scale-up round (one DescribeInstances, at most one RunInstances) per interval.
    scale_up_interval_seconds: int = 1
    # A round holds the lease until it is over, or for this long if its run dies first.
    scale_up_hold_seconds: int = 10
    # DescribeInstances is eventually consistent: count our own launches as live for this long
    # while EC2 does not list them yet, so the next round does not launch them again.
    launch_grace_seconds: int = 120
    # Gallery changes need this secret in X-Admin-Token; empty means gallery changes are refused.
    admin_token: str = field(default="", repr=False)
    admin_token_parameter: str = ""
    # The seed's `POST /` waits this long for a result; API Gateway ends requests at 29 s.
    compat_wait_seconds: float = 25.0
    compat_poll_seconds: float = 0.5
    cors_allow_origin: str = "*"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from FACEREC_* variables; names follow the stage prefix unless set one by one."""
        env = os.environ if env is None else env
        prefix = env.get("FACEREC_STAGE_PREFIX", "") or _DEFAULT_PREFIX
        types = env.get("FACEREC_ALLOWED_CONTENT_TYPES", "")
        return cls(
            stage_prefix=prefix,
            region=env.get("AWS_REGION", "") or env.get("AWS_DEFAULT_REGION", "") or "us-east-1",
            input_bucket=env.get("FACEREC_INPUT_BUCKET", "") or f"{prefix}-input",
            output_bucket=env.get("FACEREC_OUTPUT_BUCKET", "") or f"{prefix}-output",
            jobs_table=env.get("FACEREC_JOBS_TABLE", "") or f"{prefix}-jobs",
            people_table=env.get("FACEREC_PEOPLE_TABLE", "") or f"{prefix}-people",
            leases_table=env.get("FACEREC_LEASES_TABLE", "") or f"{prefix}-leases",
            jobs_queue_url=env.get("FACEREC_JOBS_QUEUE_URL", ""),
            upload_events_queue=env.get("FACEREC_UPLOAD_EVENTS_QUEUE", "")
            or f"{prefix}-upload-events",
            state_machine_arn=env.get("FACEREC_STATE_MACHINE_ARN", ""),
            worker_launch_template=env.get("FACEREC_WORKER_LAUNCH_TEMPLATE", "")
            or f"{prefix}-worker",
            upload_expiry_minutes=env_int(env, "FACEREC_UPLOAD_EXPIRY_MINUTES", 15),
            max_upload_bytes=env_int(env, "FACEREC_MAX_UPLOAD_BYTES", 10 * 1024 * 1024),
            allowed_content_types=tuple(t.strip() for t in types.split(",") if t.strip())
            or cls.allowed_content_types,
            job_ttl_days=env_int(env, "FACEREC_JOB_TTL_DAYS", 7),
            upload_claim_stale_seconds=env_int(env, "FACEREC_UPLOAD_CLAIM_STALE_SECONDS", 60),
            target_backlog_per_worker=env_int(env, "FACEREC_TARGET_BACKLOG_PER_WORKER", 50),
            max_workers=env_int(env, "FACEREC_MAX_WORKERS", 20),
            scale_up_interval_seconds=env_int(env, "FACEREC_SCALE_UP_INTERVAL_SECONDS", 1),
            scale_up_hold_seconds=env_int(env, "FACEREC_SCALE_UP_HOLD_SECONDS", 10),
            launch_grace_seconds=env_int(env, "FACEREC_LAUNCH_GRACE_SECONDS", 120),
            admin_token=env.get("FACEREC_ADMIN_TOKEN", ""),
            admin_token_parameter=env.get("FACEREC_ADMIN_TOKEN_PARAMETER", ""),
            compat_wait_seconds=env_float(env, "FACEREC_COMPAT_WAIT_SECONDS", 25.0),
            compat_poll_seconds=env_float(env, "FACEREC_COMPAT_POLL_SECONDS", 0.5),
            cors_allow_origin=env.get("FACEREC_CORS_ALLOW_ORIGIN", "") or "*",
        )
