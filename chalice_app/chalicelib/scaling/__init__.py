"""Scale-up: how many workers the backlog wants (policy), who may act (lease), and acting (scaler)."""

from __future__ import annotations

from .lease import Lease, LeaseGrant
from .policy import desired_workers, workers_to_launch
from .scaler import ScaleUp, ScaleUpResult

__all__ = ["Lease", "LeaseGrant", "ScaleUp", "ScaleUpResult", "desired_workers", "workers_to_launch"]
