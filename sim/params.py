"""Everything a simulation run assumes, with defaults taken from the service's own settings.

Scaling numbers (target backlog, fleet cap, scale-up interval, launch grace) come from
chalicelib.config.Settings and the worker's (batch size, long-poll wait, idle time) from
facerec_worker.settings.WorkerSettings, so the simulator models the service as configured.
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
    """One EC2 worker: c6i.large (2 vCPUs, infra/template.yaml's default), the loop in worker.py."""

    cores: int = 2
    batch_size: int = _WORKER_DEFAULTS.batch_size
    poll_wait_s: float = float(_WORKER_DEFAULTS.poll_wait_seconds)
    idle_s: float = _WORKER_DEFAULTS.idle_seconds
    # Engine time per batch, fixed and per photo (EngineRate.batch_seconds).
    batch_fixed_s: float = 0.0
    photo_s: float = 1 / 65
    # processor.py makes its AWS calls one after another: per photo a DynamoDB claim, S3 HEAD and
    # GET, the result PUT and the DynamoDB outcome; per batch the gallery HEAD and the delete.
    # A few ms to tens of ms each inside the Region. Assumed, not measured (no AWS here).
    photo_io_s: float = 0.04
    batch_io_s: float = 0.02

    @classmethod
    def from_engine(cls, rate: EngineRate, **overrides: float) -> WorkerModel:
        cores = int(overrides.pop("cores", cls.cores))
        fixed, per_photo = rate.batch_seconds(cores)
        return cls(cores=cores, batch_fixed_s=fixed, photo_s=per_photo, **overrides)

    def service_s(self, photos: int) -> float:
        return self.batch_io_s + self.batch_fixed_s + photos * (self.photo_s + self.photo_io_s)


@dataclass(frozen=True)
class FleetModel:
    """How EC2 behaves for the fleet: start-up times and listing lag (the cap is in Settings)."""

    # RunInstances to a worker polling: boot, systemd, loading the models.
    cold_start_s: float = 30.0
    # A warm pool keeps pre-initialised stopped instances: starting one skips boot and model load.
    warm_start_s: float = 8.0
    warm_pool: int = 0
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

    @property
    def max_workers(self) -> int:
        return self.settings.max_workers

    def with_max_workers(self, max_workers: int) -> SimParams:
        return replace(self, settings=replace(self.settings, max_workers=max_workers))

    def with_fleet(self, **changes: float) -> SimParams:
        return replace(self, fleet=replace(self.fleet, **changes))
