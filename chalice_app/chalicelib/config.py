"""The API's settings: every variable the control plane's functions read, each default once.

Chalice reads decorator arguments (the upload-events queue name) when app.py is imported, so a
missing variable must never crash the import: each one has a default that works locally. The
names and the upload limit the workers share come from contract.StageSettings.
"""

from __future__ import annotations

from dataclasses import dataclass

from .contract import StageSettings, setting

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings(StageSettings):
    """The deployed resources' names and the service's limits.

    Resource names default to what infra/template.yaml creates for the stage prefix, so a stack
    deployed with the default prefix needs no more than its account id and queue URL.
    """

    input_bucket: str = setting("FACEREC_INPUT_BUCKET", named="input_bucket")
    upload_events_queue: str = setting("FACEREC_UPLOAD_EVENTS_QUEUE", named="upload_events_queue")
    state_machine_arn: str = setting("FACEREC_STATE_MACHINE_ARN")
    # The admin view counts what waits in the dead-letter queues: stack outputs, like the jobs
    # queue's URL.
    jobs_dead_letter_queue_url: str = setting("FACEREC_JOBS_DEAD_LETTER_QUEUE_URL")
    upload_events_dead_letter_queue_url: str = setting(
        "FACEREC_UPLOAD_EVENTS_DEAD_LETTER_QUEUE_URL"
    )
    worker_launch_template: str = setting(
        "FACEREC_WORKER_LAUNCH_TEMPLATE", named="worker_launch_template"
    )
    # Uploads: a presigned POST lives this long and accepts photos (up to max_upload_bytes) of these
    # types.
    upload_expiry_minutes: int = setting("FACEREC_UPLOAD_EXPIRY_MINUTES", 15)
    allowed_content_types: tuple[str, ...] = setting(
        "FACEREC_ALLOWED_CONTENT_TYPES", ("image/jpeg", "image/png", "image/webp")
    )
    job_ttl_days: int = setting("FACEREC_JOB_TTL_DAYS", 7)
    # Bulk enrollment: at most this many photos (jobs, presigned uploads) in one request.
    max_photos_per_request: int = setting("FACEREC_MAX_PHOTOS_PER_REQUEST", 100)
    # The schedule that folds the gallery's enrollments into its snapshot (when any wait).
    compaction_minutes: int = setting("FACEREC_COMPACTION_MINUTES", 15)
    # A claim on an upload older than this belongs to an event handler that died before starting
    # the workflow; it matches the upload-events queue's visibility timeout (infra/template.yaml).
    upload_claim_stale_seconds: int = setting("FACEREC_UPLOAD_CLAIM_STALE_SECONDS", 60)
    # Scaling out: enough workers to drain the backlog (waiting or in flight) within this many
    # seconds at a worker's rate, never more than max_workers. The rate is the engine's measured
    # photos/s on the worker's instance type (README: yunet + facenet on course photos,
    # c6i.large-sized 2 cores).
    drain_objective_seconds: float = setting("FACEREC_DRAIN_OBJECTIVE_SECONDS", 30.0)
    worker_photos_per_second: float = setting("FACEREC_WORKER_PHOTOS_PER_SECOND", 21.6)
    # Pooled workers start in seconds, not the half minute of a launch, and cost nothing until
    # then: they are started to drain the backlog within this shorter objective.
    pool_drain_objective_seconds: float = setting("FACEREC_POOL_DRAIN_OBJECTIVE_SECONDS", 4.0)
    max_workers: int = setting("FACEREC_MAX_WORKERS", 20)
    # At most one scale-up round (one DescribeInstances, at most one RunInstances) per interval.
    scale_up_interval_seconds: int = setting("FACEREC_SCALE_UP_INTERVAL_SECONDS", 1)
    # A round holds the lease until it is over, or for this long if its run dies first.
    scale_up_hold_seconds: int = setting("FACEREC_SCALE_UP_HOLD_SECONDS", 10)
    # DescribeInstances is eventually consistent: count our own launches as live for this long
    # while EC2 does not list them yet, so the next round does not launch them again.
    launch_grace_seconds: int = setting("FACEREC_LAUNCH_GRACE_SECONDS", 120)
    # Gallery changes and the admin view need the admin token in X-Admin-Token: a deployed stage's
    # is the SecureString named here; the plaintext one counts on the local stack alone
    # (chalicelib.auth.admin_secret). No token at all refuses them.
    admin_token: str = setting("FACEREC_ADMIN_TOKEN", secret=True)
    admin_token_parameter: str = setting("FACEREC_ADMIN_TOKEN_PARAMETER")
    # The admin view counts the last hour's jobs with a scan of the jobs table
    # (chalicelib.fleet_view): one scan serves every refresh for this long.
    fleet_view_scan_seconds: int = setting("FACEREC_FLEET_VIEW_SCAN_SECONDS", 30)
    # Set by the local stack (moto's address) and by Lambda's runtime: is_local_stack reads them.
    endpoint_url: str = setting("AWS_ENDPOINT_URL")
    lambda_function_name: str = setting("AWS_LAMBDA_FUNCTION_NAME")
    # The seed's `POST /` holds its function at most this long for a result, and not at all when
    # the photo is expected to wait longer (chalicelib.outlook): then, or when the hold runs out,
    # it answers 202 and the job to poll. A warm fleet answers in about a second (the upload's
    # event, the workflow and the queue ~0.5 s, sim/params.py; a batch of ten ~0.5 s, README), so
    # 5 s leaves room for a loaded fleet while each anonymous request holds a function 5 s at
    # most: the account's 1,000 concurrent executions would take 200 requests/s, not the 40 of
    # the 25 s it held before (issue 19). `make run`, with no gateway or Lambda, holds 30 min.
    compat_wait_seconds: float = setting("FACEREC_COMPAT_WAIT_SECONDS", 5.0)
    # RunInstances to a worker polling (boot, cloud-init, models), what a photo waits for when no
    # worker is live: sim/params.py's cold start, of which `make bench-boot` measures the worker's
    # part.
    worker_boot_seconds: float = setting("FACEREC_WORKER_BOOT_SECONDS", 30.0)
    compat_poll_seconds: float = setting("FACEREC_COMPAT_POLL_SECONDS", 0.5)
    # A status answer's Retry-After for a job that waits in the queue: its wait so far, at most
    # this (chalicelib.polling), so that a client waiting out a cold fleet's boot asks a few
    # times, not sixty.
    max_retry_after_seconds: int = setting("FACEREC_MAX_RETRY_AFTER_SECONDS", 10)
    # The one web origin besides the API's own whose pages may call the API; empty: none. The page
    # is served by the API itself (/app) and needs no CORS. To widen it, set the variable in the
    # stage's environment_variables (.chalice/config.json): Chalice reads it when packaging (the
    # preflight's answer) and the function at run time (each response's header).
    cors_allow_origin: str = setting("FACEREC_CORS_ALLOW_ORIGIN", "")
    # Recognition needs an API key (chalicelib.callers); true opens the seed's `POST /`, and only
    # it, to callers that cannot send one (the course's workload generator). Like the CORS origin,
    # a stage sets it in .chalice/config.json: Chalice reads it when packaging (API Gateway's key
    # check) and the function at start (its log line). `make run` sets it unless told otherwise.
    open_seed_route: bool = setting("FACEREC_OPEN_SEED_ROUTE", False)

    @property
    def upload_expiry_seconds(self) -> int:
        """How long an upload slot (a presigned POST) accepts its photo."""
        return self.upload_expiry_minutes * 60

    @property
    def job_ttl_seconds(self) -> int:
        """How long a job's record lives before DynamoDB's TTL deletes it."""
        return self.job_ttl_days * 86400

    @property
    def is_local_stack(self) -> bool:
        """Every AWS call goes to another endpoint (moto's) and no Lambda runs this: nothing the
        plaintext admin token guards is real data, and no function configuration shows it."""
        return bool(self.endpoint_url) and not self.lambda_function_name
