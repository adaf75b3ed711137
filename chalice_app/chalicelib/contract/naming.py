"""Every name infra/template.yaml gives a stage's resources, and the tags on its workers.

A stage's resources are all named from one prefix, `<app_name>-<stage>` (facerec-dev); bucket
names are global, so the template adds the account id to them. The settings of the API and of
the worker default to these names, and tests/test_contract.py checks them against the template.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_STAGE_PREFIX", "STAGE_TAG", "WORKER_ROLE_TAG", "ResourceNames", "stage_prefix"]

DEFAULT_STAGE_PREFIX = "facerec-dev"

# Tags the launch template puts on every worker instance: the scale-up task counts live workers by
# them, so a worker launched by hand with the same tags counts too.
WORKER_ROLE_TAG = ("facerec:role", "worker")
STAGE_TAG = "facerec:stage"


def stage_prefix(app_name: str, stage: str) -> str:
    """The stage's StagePrefix: Chalice's own `<app_name>-<stage>`, which also names its
    functions."""
    return f"{app_name}-{stage}"


@dataclass(frozen=True)
class ResourceNames:
    """The names of one stage's resources. Without `account_id` the buckets have no name ("")."""

    prefix: str = DEFAULT_STAGE_PREFIX
    account_id: str = ""

    def _bucket(self, role: str) -> str:
        return f"{self.prefix}-{role}-{self.account_id}" if self.account_id else ""

    @property
    def input_bucket(self) -> str:
        return self._bucket("input")

    @property
    def output_bucket(self) -> str:
        return self._bucket("output")

    @property
    def jobs_table(self) -> str:
        return f"{self.prefix}-jobs"

    @property
    def people_table(self) -> str:
        return f"{self.prefix}-people"

    @property
    def leases_table(self) -> str:
        return f"{self.prefix}-leases"

    @property
    def jobs_queue(self) -> str:
        return f"{self.prefix}-jobs"

    @property
    def upload_events_queue(self) -> str:
        return f"{self.prefix}-upload-events"

    @property
    def jobs_dead_letter_queue(self) -> str:
        return f"{self.prefix}-jobs-dlq"

    @property
    def upload_events_dead_letter_queue(self) -> str:
        return f"{self.prefix}-upload-events-dlq"

    @property
    def state_machine(self) -> str:
        return f"{self.prefix}-jobs"

    @property
    def worker_launch_template(self) -> str:
        return f"{self.prefix}-worker"

    @property
    def admin_token_parameter(self) -> str:
        return f"/{self.prefix}/admin-token"
