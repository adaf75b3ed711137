"""The names that tie Chalice's functions to the stack: one table, read by every deploy path.

A stage's resources are all named from one prefix, `<app_name>-<stage>` (facerec-dev), which is
also how Chalice names the functions it deploys (facerec-dev, facerec-dev-scale_up, …). So the
roles, log groups and the workflow's scale-up ARN in infra/template.yaml hold whether the
functions come from `chalice deploy` or from the merged `chalice package`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from chalicelib.contract import stage_prefix as _stage_prefix

__all__ = [
    "APP_ENVIRONMENT",
    "CHALICE_CONFIG",
    "FUNCTIONS",
    "POWERTOOLS_LAYER_PARAMETER",
    "SCALING_ENVIRONMENT",
    "Function",
    "app_name",
    "configured_stage_prefix",
]

CHALICE_CONFIG = Path(__file__).resolve().parent.parent / "chalice_app" / ".chalice" / "config.json"

# The public SSM parameter that names, in each region, AWS's published layer of Powertools for AWS
# Lambda at the version pyproject.toml pins (tests/test_deploy_package.py holds the two together),
# for the functions' runtime (Python 3.11, x86_64): the functions' JSON logs and metrics need it.
POWERTOOLS_LAYER_PARAMETER = "/aws/service/powertools/python/x86_64/python3.11/3.37.0"

# Each FACEREC_* variable chalicelib.config.Settings reads for a resource the stack creates, and
# the output that holds it: deployed functions are told every name, none is left to a default.
APP_ENVIRONMENT = MappingProxyType(
    {
        "FACEREC_INPUT_BUCKET": "InputBucketName",
        "FACEREC_OUTPUT_BUCKET": "OutputBucketName",
        "FACEREC_JOBS_TABLE": "JobsTableName",
        "FACEREC_PEOPLE_TABLE": "PeopleTableName",
        "FACEREC_LEASES_TABLE": "LeasesTableName",
        "FACEREC_JOBS_QUEUE_URL": "JobsQueueUrl",
        "FACEREC_JOBS_DEAD_LETTER_QUEUE_URL": "JobsDeadLetterQueueUrl",
        "FACEREC_UPLOAD_EVENTS_DEAD_LETTER_QUEUE_URL": "UploadEventsDeadLetterQueueUrl",
        "FACEREC_UPLOAD_EVENTS_QUEUE": "UploadEventsQueueName",
        "FACEREC_STATE_MACHINE_ARN": "StateMachineArn",
        "FACEREC_WORKER_LAUNCH_TEMPLATE": "WorkerLaunchTemplateName",
    }
)

# Each FACEREC_* variable chalicelib.config.Settings reads that a stack parameter sets (the fleet's
# elasticity), and the output that holds the parameter's value: the same path as APP_ENVIRONMENT,
# so the merged stack refers to the parameter and `chalice deploy` reads the deployed value. The
# workers read the first two too, from the launch template's user data: one value serves both.
SCALING_ENVIRONMENT = MappingProxyType(
    {
        "FACEREC_WARM_POOL_SIZE": "WarmPoolSizeSetting",
        "FACEREC_MIN_WORKERS": "MinWorkersSetting",
        "FACEREC_WORKER_PHOTOS_PER_SECOND": "WorkerPhotosPerSecondSetting",
        "FACEREC_DRAIN_OBJECTIVE_SECONDS": "DrainObjectiveSecondsSetting",
        "FACEREC_POOL_DRAIN_OBJECTIVE_SECONDS": "PoolDrainObjectiveSecondsSetting",
    }
)


@dataclass(frozen=True)
class Function:
    """One Chalice function: its name in config.json, its logical id in `chalice package`'s
    template, the role infra/template.yaml gives it, and its deployed name after the prefix."""

    name: str
    logical_id: str
    role: str
    suffix: str

    def function_name(self, prefix: str) -> str:
        return prefix + self.suffix


FUNCTIONS = (
    Function("api_handler", "APIHandler", "ApiFunctionRole", ""),
    Function("on_upload_events", "OnUploadEvents", "UploadEventsFunctionRole", "-on_upload_events"),
    Function("scale_up", "ScaleUp", "ScaleUpFunctionRole", "-scale_up"),
    Function(
        "scale_up_every_minute",
        "ScaleUpEveryMinute",
        "ScaleUpFunctionRole",
        "-scale_up_every_minute",
    ),
    # Queues a compaction job (as DELETE /people does), so it runs as the API does.
    Function("compact_gallery", "CompactGallery", "ApiFunctionRole", "-compact_gallery"),
)


def app_name(config_path: Path = CHALICE_CONFIG) -> str:
    return json.loads(config_path.read_text(encoding="utf-8"))["app_name"]


def configured_stage_prefix(stage: str, config_path: Path = CHALICE_CONFIG) -> str:
    """The stage's StagePrefix, `<app_name>-<stage>` as Chalice names it, the app's name read from
    .chalice/config.json (contract.stage_prefix takes the name as given)."""
    return _stage_prefix(app_name(config_path), stage)
