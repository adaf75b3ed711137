"""Settings read from the environment: each field names its variable and its default once.

    @dataclass(frozen=True)
    class Settings(StageSettings):
        max_workers: int = setting("FACEREC_MAX_WORKERS", 20)

`Settings.from_env(env)` reads every field's variable; unset or blank means the field's default,
so a missing variable never crashes an import (Chalice reads decorator arguments at import).
Fields that hold a resource name default to what infra/template.yaml calls it for the stage
prefix (contract.naming.ResourceNames). The API's settings (chalicelib.config) and the worker's
(facerec_worker.settings) both start from StageSettings: the names and the limit they share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from .naming import DEFAULT_STAGE_PREFIX, ResourceNames
from .schema import DEFAULT_MAX_UPLOAD_BYTES

__all__ = ["EnvSettings", "StageSettings", "setting"]

_S = TypeVar("_S", bound="EnvSettings")


def setting(
    variables: str | tuple[str, ...], default: Any = "", *, named: str = "", secret: bool = False
) -> Any:
    """A field read from the first of `variables` that is set; a `named` field left empty takes
    that attribute of the stage's ResourceNames. A `secret` stays out of the repr."""
    names = (variables,) if isinstance(variables, str) else variables
    return field(default=default, repr=not secret, metadata={"variables": names, "named": named})


def _parse(raw: str, default: Any) -> Any:
    """`raw` as the default's type: a bool ("true"/"1"/"yes"), an int, a float, a comma-separated
    tuple, or the string."""
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes")
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return type(default)(raw)


@dataclass(frozen=True)
class EnvSettings:
    """The reading of `setting` fields; subclasses only declare fields."""

    def __post_init__(self) -> None:
        names = ResourceNames(
            getattr(self, "stage_prefix", DEFAULT_STAGE_PREFIX), getattr(self, "account_id", "")
        )
        for item in fields(self):
            if item.metadata.get("named") and not getattr(self, item.name):
                object.__setattr__(self, item.name, getattr(names, item.metadata["named"]))

    @classmethod
    def from_env(cls: type[_S], env: Mapping[str, str] | None = None) -> _S:
        """The settings `env` (os.environ by default) sets; every other field keeps its default."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = next(
                (
                    env[name].strip()
                    for name in item.metadata.get("variables", ())
                    if env.get(name, "").strip()
                ),
                "",
            )
            if raw:
                values[item.name] = _parse(raw, item.default)
        return cls(**values)


@dataclass(frozen=True)
class StageSettings(EnvSettings):
    """What both the API and a worker need: which stage, where, its shared tables, bucket and
    queue, and the upload limit both enforce."""

    stage_prefix: str = setting("FACEREC_STAGE_PREFIX", DEFAULT_STAGE_PREFIX)
    # Bucket names carry the account id (they are global); without it, set the buckets one by one.
    account_id: str = setting("FACEREC_ACCOUNT_ID")
    region: str = setting(("AWS_REGION", "AWS_DEFAULT_REGION"), "us-east-1")
    output_bucket: str = setting("FACEREC_OUTPUT_BUCKET", named="output_bucket")
    jobs_table: str = setting("FACEREC_JOBS_TABLE", named="jobs_table")
    people_table: str = setting("FACEREC_PEOPLE_TABLE", named="people_table")
    # The scale-up lease and the fleet plan (contract.fleet_plan) that workers claim their leaving
    # on.
    leases_table: str = setting("FACEREC_LEASES_TABLE", named="leases_table")
    # A URL holds the account and the region: the stack's output, never derived here.
    jobs_queue_url: str = setting("FACEREC_JOBS_QUEUE_URL")
    max_upload_bytes: int = setting("FACEREC_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES)
    # Leaving workers stop into a warm pool of at most this many instances (EBS only while stopped)
    # instead of terminating; the scale-up task starts them before it launches new ones.
    warm_pool_size: int = setting("FACEREC_WARM_POOL_SIZE", 0)
    # Workers never leave below this many, and the scale-up task keeps this many live: no cold
    # start.
    min_workers: int = setting("FACEREC_MIN_WORKERS", 0)
