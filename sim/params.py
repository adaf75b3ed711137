"""Everything a simulation run assumes, with defaults taken from the service's own settings.

Scaling numbers (a worker's rate, the drain objective, fleet cap, warm pool, scale-up interval,
launch grace) come from chalicelib.config.Settings and the worker's (batch size, long-poll wait,
the idle and retirement rules) from facerec_worker.settings.WorkerSettings, so the simulator models
the service as configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from chalicelib.config import Settings
from facerec_worker.settings import WorkerSettings

from .engine_rate import EngineRate

__all__ = ["FleetModel", "SimParams", "WorkerModel"]

_WORKER_DEFAULTS = WorkerSettings()


@dataclass(frozen=True)
class WorkerModel:
    """One EC2 worker: c6i.large (2 vCPUs, infra/template.yaml's default), the loop in worker.py.

    Its rules for leaving (idle time, retirement, the pool) are `settings`, the worker's own
    WorkerSettings, which the simulation hands to facerec_worker.leaving as the worker does.
    """

    cores: int = 2
    batch_size: int = _WORKER_DEFAULTS.batch_size
    poll_wait_s: float = float(_WORKER_DEFAULTS.poll_wait_seconds)
    # Engine time per batch, fixed and per photo (EngineRate.batch_seconds).
    batch_fixed_s: float = 0.0
    photo_s: float = 1 / 65
    # A batch's AWS calls are a chain of round trips whatever its size (processor.py runs each
    # step's calls side by side): receive, the claims (DynamoDB), HEAD and GET of the photos (S3),
    # then the results (S3 PUT), the outcomes (DynamoDB), the delete (SQS). The worker prepares
    # the next batch (the first half of the chain) and finishes the last one (the second half)
    # while its engine works on this one (worker.py), so a batch holds the worker for the longest
    # of the three. Assumed, not measured (no AWS here): ~15 ms per DynamoDB or SQS call and
    # 30-60 ms per S3 request inside a Region; `make bench-sim` sweeps it (io_sweep in
    # out/sim.json).
    batch_io_s: float = 0.2
    settings: WorkerSettings = field(default_factory=WorkerSettings)

    @classmethod
    def from_engine(cls, rate: EngineRate, **overrides: float) -> WorkerModel:
        cores = int(overrides.pop("cores", cls.cores))
        fixed, per_photo = rate.batch_seconds(cores)
        return cls(cores=cores, batch_fixed_s=fixed, photo_s=per_photo, **overrides)

    def service_s(self, photos: int) -> float:
        return max(self.batch_io_s / 2, self.engine_s(photos))

    def engine_s(self, photos: int) -> float:
        return self.batch_fixed_s + photos * self.photo_s

    def engine_s_per_photo(self, photos: int = 10) -> float:
        """The engine's own time per photo in a batch of `photos`: what a fully busy worker
        bills."""
        return self.engine_s(photos) / photos


@dataclass(frozen=True)
class FleetModel:
    """How EC2 behaves for the fleet: start-up times and listing lag (the cap and pool are
    settings)."""

    # RunInstances to a worker polling: boot, systemd, loading the models.
    cold_start_s: float = 30.0
    # StartInstances on a pooled (stopped) instance to a worker polling: no first-boot work
    # (cloud-init, package setup), but the OS boots and the models load again; less when it was
    # hibernated. Assumed, swept by `make bench-sim` (warm_start_sweep in out/sim.json).
    warm_start_s: float = 8.0
    # DescribeInstances may not list an instance for a moment after RunInstances returned it.
    describe_lag_s: float = 2.0


@dataclass(frozen=True)
class SimParams:
    worker: WorkerModel = field(default_factory=WorkerModel)
    fleet: FleetModel = field(default_factory=FleetModel)
    settings: Settings = field(default_factory=Settings)
    # Upload landing in S3 to the job's message on the jobs queue: S3 notification, the
    # upload-events queue, the Lambda poller, StartExecution and the workflow's first two states.
    ingest_delay_s: float = 0.5

    @classmethod
    def for_engine(cls, rate: EngineRate, **fleet: float) -> SimParams:
        """The service's defaults with workers of `rate`, the stage configured with their measured
        rate (FACEREC_WORKER_PHOTOS_PER_SECOND: full batches, the I/O chain included)."""
        worker = WorkerModel.from_engine(rate)
        return (
            cls(worker=worker)
            .with_fleet(**fleet)
            .with_settings(
                worker_photos_per_second=round(
                    worker.batch_size / worker.service_s(worker.batch_size), 2
                )
            )
        )

    @property
    def max_workers(self) -> int:
        return self.settings.max_workers

    def with_max_workers(self, max_workers: int) -> SimParams:
        return replace(self, settings=replace(self.settings, max_workers=max_workers))

    def with_fleet(self, **changes: float) -> SimParams:
        return replace(self, fleet=replace(self.fleet, **changes))

    def with_settings(self, **changes: object) -> SimParams:
        """Other stage settings: those of the scale-up task, and the ones workers share with it."""
        return replace(self, settings=replace(self.settings, **changes))

    def with_stage(self, **changes: object) -> SimParams:
        """Settings both the scale-up task and the workers read (warm_pool_size, min_workers)."""
        return self.with_settings(**changes).with_worker_settings(**changes)

    def with_worker_settings(self, **changes: object) -> SimParams:
        return replace(
            self, worker=replace(self.worker, settings=replace(self.worker.settings, **changes))
        )
