"""The worker's settings: the stage's shared names and upload limit, plus its own knobs."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.contract import StageSettings, setting


@dataclass(frozen=True)
class WorkerSettings(StageSettings):
    """What a worker reads at boot (the launch template's user data writes the names into
    /etc/facerec/worker.env); none of the API's own settings."""

    # Empty on EC2: the worker asks the instance metadata service. Set by the local fleet.
    instance_id: str = setting("FACEREC_INSTANCE_ID")
    batch_size: int = setting("FACEREC_WORKER_BATCH_SIZE", 10)
    # SQS long polling: at most 20 s on AWS; shorter locally so tests and Ctrl-C are snappy.
    poll_wait_seconds: int = setting("FACEREC_WORKER_POLL_WAIT_SECONDS", 20)
    # This long without work, with nothing visible or in flight on the queue, and the worker ends
    # itself: the fleet is back to zero within 2 minutes of the last result (make bench-sim).
    idle_seconds: float = setting("FACEREC_WORKER_IDLE_SECONDS", 90.0)
    # While a batch runs, its messages' visibility is pushed this far ahead, this often.
    visibility_extension_seconds: int = setting("FACEREC_WORKER_VISIBILITY_SECONDS", 120)
    heartbeat_seconds: float = setting("FACEREC_WORKER_HEARTBEAT_SECONDS", 30.0)
    # A job that failed this many deliveries is recorded FAILED (SQS then moves it to the DLQ).
    # Read from the queue's redrive policy at boot when the queue has one.
    max_receives: int = setting("FACEREC_WORKER_MAX_RECEIVES", 3)
