"""A Python client and the `facerec` command for a running facerec service, local or deployed."""

from .api import FacerecClient, FacerecError, JobFailed

__all__ = ["FacerecClient", "FacerecError", "JobFailed"]
