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
    # The idle rule (leaving.IdleRule): without work, with nothing visible or in flight on the
    # queue, a worker ends itself after `idle_gap_factor` times its longest recent wait for work,
    # within [idle_seconds, idle_max_seconds]. After a burst that is idle_seconds, so the fleet is
    # back to zero within 15 s of the last result (make bench-sim); a trickle of photos up to
    # idle_max_seconds / idle_gap_factor apart keeps its worker instead of paying a boot per photo.
    idle_seconds: float = setting("FACEREC_WORKER_IDLE_SECONDS", 8.0)
    idle_max_seconds: float = setting("FACEREC_WORKER_IDLE_MAX_SECONDS", 60.0)
    idle_gap_factor: float = setting("FACEREC_WORKER_IDLE_GAP_FACTOR", 2.0)
    # Retirement under load (leaving.RetirementRule): over each window a worker less busy than
    # retire_below claims a retirement when the fleet, sized to be retire_target busy, can spare it.
    retire_window_seconds: float = setting("FACEREC_WORKER_RETIRE_WINDOW_SECONDS", 10.0)
    retire_below: float = setting("FACEREC_WORKER_RETIRE_BELOW", 0.75)
    retire_target: float = setting("FACEREC_WORKER_RETIRE_TARGET", 0.9)
    # How often a worker below the line reads the fleet plan, and how old a plan may be to act on.
    retire_check_seconds: float = setting("FACEREC_WORKER_RETIRE_CHECK_SECONDS", 2.0)
    plan_max_age_seconds: float = setting("FACEREC_WORKER_PLAN_MAX_AGE_SECONDS", 150.0)
    # Whether the launch template configures hibernation: a pooled worker then keeps its memory
    # (models loaded) and resumes polling where it stopped.
    hibernate: bool = setting("FACEREC_WORKER_HIBERNATE", False)
    # A batch's messages are received hidden for this long, and the heartbeat (heartbeat.py) keeps
    # pushing their visibility this far ahead while the batch is held: a killed worker's jobs are
    # visible again at most this long after its last beat, and another worker's poll takes them
    # (issue 19: retaken within 30 s). A batch is usually held for about three of its engine steps
    # (one batch ahead, one behind; ten photos take ~0.5 s), so most batches never need a beat.
    # The jobs queue's own VisibilityTimeout (infra/template.yaml) is the same.
    visibility_extension_seconds: int = setting("FACEREC_WORKER_VISIBILITY_SECONDS", 20)
    # A quarter of the visibility: the messages stay hidden through three missed beats, or a beat
    # 15 s late. That is the most botocore's retries of a failed ChangeMessageVisibilityBatch wait
    # (legacy mode: 4 retries, up to 1 + 2 + 4 + 8 s), against a call's usual tens of ms; and on a
    # machine loaded by its engine the beat's thread may run a little late.
    heartbeat_seconds: float = setting("FACEREC_WORKER_HEARTBEAT_SECONDS", 5.0)
    # The longest a batch holds its messages, from their receipt: the heartbeat then lets them go,
    # and other workers retake the jobs of a batch that hangs (a stuck engine or call). About a
    # hundred times a batch's usual hold: room for ten photos at the 80-megapixel limit (~1.3 s
    # each to decode), a gallery refresh, botocore's retries and a loaded machine, while a hung
    # batch's jobs still return within two minutes. A claim older than this is stale (worker.py).
    max_batch_seconds: float = setting("FACEREC_WORKER_MAX_BATCH_SECONDS", 120.0)
    # A job that failed this many deliveries is recorded FAILED (SQS then moves it to the DLQ).
    # Read from the queue's redrive policy at boot when the queue has one.
    max_receives: int = setting("FACEREC_WORKER_MAX_RECEIVES", 3)
    # The CloudWatch agent's EMF listener that the worker's metrics go to (metrics.py), by the name
    # AWS's embedded-metrics clients read. The AMI's worker unit sets it to the agent's default,
    # tcp://127.0.0.1:25888; unset (the local stack, the tests), the metrics are lines on stderr.
    emf_agent_endpoint: str = setting("AWS_EMF_AGENT_ENDPOINT")
