"""Scale-up: how many workers the backlog wants (policy), who may act (lease), which workers live
(fleet), and acting (scaler)."""

from __future__ import annotations

from .fleet import LIVE_STATES, POOLED_STATES, WorkerInstance, worker_instances, worker_states
from .lease import Lease, LeaseGrant
from .policy import desired_workers, workers_to_launch
from .scaler import ScaleUp, ScaleUpResult

__all__ = [
    "LIVE_STATES",
    "POOLED_STATES",
    "Lease",
    "LeaseGrant",
    "ScaleUp",
    "ScaleUpResult",
    "WorkerInstance",
    "desired_workers",
    "worker_instances",
    "worker_states",
    "workers_to_launch",
]
