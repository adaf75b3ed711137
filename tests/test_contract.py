"""The seam between the control plane and the worker: the worker takes only chalicelib.contract,
and the contract's names, transitions and settings hold against the template and each other."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from chalicelib.config import Settings
from chalicelib.contract import (
    CLAIM,
    RECORD_FAILED_UNTAKEN,
    JobStatus,
    ResourceNames,
    is_missing_object,
)
from facerec_worker.settings import WorkerSettings
from infra.stack import load_template

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "worker_ami" / "facerec_worker"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    return names | {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and not node.level
    }


def test_the_worker_imports_nothing_of_chalicelib_but_the_contract():
    chalicelib = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in WORKER.rglob("*.py")
        for module in _imported_modules(path)
        if module.split(".")[0] == "chalicelib"
    }
    assert chalicelib, "the worker takes its names from chalicelib.contract"
    assert {
        entry for entry in chalicelib if not re.search(r": chalicelib\.contract(\.|$)", entry)
    } == set()


def test_a_running_worker_loads_only_the_contract_and_no_chalice():
    code = (
        "import json, sys, facerec_worker.__main__, facerec_worker.worker; "
        "print(json.dumps([m for m in sys.modules if m.split('.')[0] in ('chalicelib', 'chalice', "
        "'infra', 'local_service', 'sim')]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert loaded and all(
        m == "chalicelib" or m.startswith("chalicelib.contract") for m in loaded
    ), loaded


def _resource_names(template: dict, prefix: str, account: str) -> dict[str, str]:
    """Each resource's name property as the stack would resolve it."""
    names = {}
    for logical_id, resource in template["Resources"].items():
        for key, value in resource.get("Properties", {}).items():
            if (
                key.endswith("Name")
                and isinstance(value, dict)
                and "Fn::Sub" in value
                and isinstance(value["Fn::Sub"], str)
            ):
                names[logical_id] = (
                    value["Fn::Sub"]
                    .replace("${StagePrefix}", prefix)
                    .replace("${AWS::AccountId}", account)
                )
    return names


def test_the_contract_names_resources_as_the_template_does():
    names = ResourceNames("facerec-prod", "111122223333")
    template = _resource_names(load_template(), names.prefix, names.account_id)
    assert {
        "InputBucket": names.input_bucket,
        "OutputBucket": names.output_bucket,
        "JobsTable": names.jobs_table,
        "PeopleTable": names.people_table,
        "LeasesTable": names.leases_table,
        "JobsQueue": names.jobs_queue,
        "UploadEventsQueue": names.upload_events_queue,
        "JobsDeadLetterQueue": names.jobs_dead_letter_queue,
        "UploadEventsDeadLetterQueue": names.upload_events_dead_letter_queue,
        "JobWorkflow": names.state_machine,
        "WorkerLaunchTemplate": names.worker_launch_template,
    }.items() <= template.items()


def test_settings_default_to_the_template_names_for_the_stage():
    env = {"FACEREC_STAGE_PREFIX": "facerec-prod", "FACEREC_ACCOUNT_ID": "111122223333"}
    names = ResourceNames("facerec-prod", "111122223333")
    api, worker = Settings.from_env(env), WorkerSettings.from_env(env)
    assert (api.input_bucket, api.output_bucket, api.leases_table) == (
        names.input_bucket,
        names.output_bucket,
        names.leases_table,
    )
    assert (worker.output_bucket, worker.jobs_table, worker.people_table) == (
        names.output_bucket,
        names.jobs_table,
        names.people_table,
    )
    # Without the account, a bucket has no name to guess: the stack's output must be given.
    assert Settings.from_env({}).input_bucket == ""


def _variables(settings: type) -> set[str]:
    return {name for field in dataclasses.fields(settings) for name in field.metadata["variables"]}


def _worker_env(template: dict) -> dict[str, str]:
    """/etc/facerec/worker.env as the launch template's user data writes it: variable -> the text
    after `=` (a `${…}` the stack fills in)."""
    user_data = template["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"][
        "UserData"
    ]
    files = {
        f["path"]: f["content"]
        for f in yaml.safe_load(user_data["Fn::Base64"]["Fn::Sub"])["write_files"]
    }
    return dict(re.findall(r"^([A-Z_]+)=(.*)$", files["/etc/facerec/worker.env"], re.M))


def test_the_launch_template_tells_a_worker_what_its_settings_read_and_no_more():
    written = set(_worker_env(load_template()))
    assert written <= _variables(WorkerSettings)
    # Every resource it uses, and every setting the stage chooses at deploy time (a parameter).
    assert {
        "FACEREC_JOBS_QUEUE_URL",
        "FACEREC_JOBS_TABLE",
        "FACEREC_PEOPLE_TABLE",
        "FACEREC_OUTPUT_BUCKET",
        "FACEREC_LEASES_TABLE",
        "FACEREC_WARM_POOL_SIZE",
        "FACEREC_MIN_WORKERS",
        "FACEREC_WORKER_IDLE_SECONDS",
        "FACEREC_WORKER_IDLE_MAX_SECONDS",
        "FACEREC_WORKER_HIBERNATE",
    } <= written


def test_the_template_parameters_a_worker_reads_default_to_the_workers_own_defaults():
    """A stack deployed with its defaults runs workers as the code's defaults would, for every
    variable the user data fills from a parameter."""
    template = load_template()
    parameters = template["Parameters"]
    from_parameters = {
        variable: parameters[value[2:-1]]["Default"]
        for variable, value in _worker_env(template).items()
        if value.startswith("${") and value[2:-1] in parameters
    }
    assert {"FACEREC_WARM_POOL_SIZE", "FACEREC_MIN_WORKERS", "FACEREC_WORKER_HIBERNATE"} <= set(
        from_parameters
    )
    defaults = WorkerSettings()
    for variable, default in from_parameters.items():
        (name,) = [
            f.name
            for f in dataclasses.fields(WorkerSettings)
            if variable in f.metadata["variables"]
        ]
        assert getattr(WorkerSettings.from_env({variable: str(default)}), name) == getattr(
            defaults, name
        ), variable


def test_the_worker_has_only_its_own_settings():
    assert not {"admin_token", "cors_allow_origin", "compat_wait_seconds", "input_bucket"} & set(
        WorkerSettings.__dataclass_fields__
    )
    assert (
        WorkerSettings.from_env(
            {"FACEREC_WORKER_IDLE_SECONDS": "5", "FACEREC_MAX_UPLOAD_BYTES": "7"}
        ).idle_seconds
        == 5.0
    )


def test_a_transition_fills_its_statuses_and_asks_for_every_other_value():
    request = RECORD_FAILED_UNTAKEN.request("job-1", error="e", cause="c", now="t")
    assert request["ExpressionAttributeNames"] == {"#error": "error", "#status": "status"}
    assert request["ExpressionAttributeValues"] == {
        ":failed": "FAILED",
        ":awaiting": "AWAITING_UPLOAD",
        ":queued": "QUEUED",
        ":error": "e",
        ":cause": "c",
        ":now": "t",
    }
    with pytest.raises(TypeError, match="message"):
        CLAIM.request("job-1", worker="w", now="t", epoch=1, stale=0, receive=1)
    assert set(CLAIM.statuses.values()) == {JobStatus.QUEUED, JobStatus.PROCESSING}


@pytest.fixture
def listed_bucket(local_stack: Any) -> tuple[Any, str]:
    s3 = local_stack.client("s3")
    bucket = f"contract-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="uploads/present.jpg", Body=b"photo")
    return s3, bucket


def _refused(code: str) -> ClientError:
    """A HEAD's refusal as botocore raises it: no body, so the status is the code."""
    return ClientError({"Error": {"Code": code, "Message": ""}}, "HeadObject")


def test_a_missing_key_answered_403_under_a_prefix_limited_list_grant_reads_as_missing(
    listed_bucket,
):
    s3, bucket = listed_bucket
    assert is_missing_object(s3, bucket, "uploads/gone.jpg", _refused("403"))


def test_a_403_for_a_key_that_exists_is_a_real_refusal(listed_bucket):
    s3, bucket = listed_bucket
    # A key sharing the missing one's prefix is not the key itself.
    assert not is_missing_object(s3, bucket, "uploads/present.jpg", _refused("AccessDenied"))
    assert is_missing_object(s3, bucket, "uploads/present", _refused("403"))


def test_a_404_is_missing_and_a_server_error_is_not(listed_bucket):
    s3, bucket = listed_bucket
    assert is_missing_object(s3, bucket, "uploads/gone.jpg", _refused("404"))
    assert not is_missing_object(s3, bucket, "uploads/gone.jpg", _refused("500"))
