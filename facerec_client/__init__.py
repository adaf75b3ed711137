"""A Python client and the `facerec` command for a running facerec service, local or deployed."""

from .api import FacerecClient, FacerecError, JobFailed
from .polling import Backoff

__all__ = ["Backoff", "FacerecClient", "FacerecError", "JobFailed"]
