"""A Python client and the `facerec` command for a running facerec service, local or deployed."""

from .api import LOCAL_API_KEY, FacerecClient, FacerecError, JobFailed
from .polling import Backoff

__all__ = ["LOCAL_API_KEY", "Backoff", "FacerecClient", "FacerecError", "JobFailed"]
