"""The worker's settings: resource names shared with the control plane, plus its own knobs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.config import Settings, env_float, env_int


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker reads at boot. Names come from chalicelib.config.Settings, the one place
    the API, the workflow and the workers agree on them; the rest is the worker's own."""

    resources: Settings
    # Empty on EC2: the worker asks the instance metadata service. Set by the local fleet.
    instance_id: str = ""
    batch_size: int = 10
    # SQS long polling: at most 20 s on AWS; shorter locally so tests and Ctrl-C are snappy.
    poll_wait_seconds: int = 20
    # This long without work, with nothing visible or in flight on the queue, and the worker ends
    # itself: the fleet is back to zero within 2 minutes of the last result (make bench-sim).
    idle_seconds: float = 90.0
    # While a batch runs, its messages' visibility is pushed this far ahead, this often.
    visibility_extension_seconds: int = 120
    heartbeat_seconds: float = 30.0
    # A job that failed this many deliveries is recorded FAILED (SQS then moves it to the DLQ).
    # Read from the queue's redrive policy at boot when the queue has one.
    max_receives: int = 3

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSettings:
        env = os.environ if env is None else env
        defaults = cls(resources=Settings())
        return cls(
            resources=Settings.from_env(env),
            instance_id=env.get("FACEREC_INSTANCE_ID", ""),
            batch_size=env_int(env, "FACEREC_WORKER_BATCH_SIZE", defaults.batch_size),
            poll_wait_seconds=env_int(env, "FACEREC_WORKER_POLL_WAIT_SECONDS", defaults.poll_wait_seconds),
            idle_seconds=env_float(env, "FACEREC_WORKER_IDLE_SECONDS", defaults.idle_seconds),
            visibility_extension_seconds=env_int(
                env, "FACEREC_WORKER_VISIBILITY_SECONDS", defaults.visibility_extension_seconds
            ),
            heartbeat_seconds=env_float(env, "FACEREC_WORKER_HEARTBEAT_SECONDS", defaults.heartbeat_seconds),
            max_receives=env_int(env, "FACEREC_WORKER_MAX_RECEIVES", defaults.max_receives),
        )
