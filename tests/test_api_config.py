"""Settings come from the environment, with defaults that never break an import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.config import Settings

pytestmark = pytest.mark.control_plane

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_follow_the_stage_prefix():
    settings = Settings.from_env({"FACEREC_ACCOUNT_ID": "111122223333"})
    assert (settings.stage_prefix, settings.jobs_table, settings.input_bucket) == (
        "facerec-dev",
        "facerec-dev-jobs",
        "facerec-dev-input-111122223333",
    )
    assert settings.compat_wait_seconds < 29  # API Gateway's limit
    prod = Settings.from_env({"FACEREC_STAGE_PREFIX": "facerec-prod"})
    assert (prod.upload_events_queue, prod.worker_launch_template) == (
        "facerec-prod-upload-events",
        "facerec-prod-worker",
    )


def test_variables_override_one_by_one_and_blank_means_default():
    settings = Settings.from_env(
        {
            "FACEREC_JOBS_TABLE": "custom-jobs",
            "FACEREC_MAX_WORKERS": "3",
            "FACEREC_ALLOWED_CONTENT_TYPES": "image/png, image/webp",
            "FACEREC_UPLOAD_EXPIRY_MINUTES": " ",
        }
    )
    assert settings.jobs_table == "custom-jobs" and settings.max_workers == 3
    assert settings.allowed_content_types == ("image/png", "image/webp")
    assert settings.upload_expiry_minutes == 15


def test_the_admin_token_is_not_in_the_repr():
    assert "hunter2" not in repr(Settings.from_env({"FACEREC_ADMIN_TOKEN": "hunter2"}))


def test_the_app_imports_with_an_empty_environment():
    code = (
        "import sys; sys.path.insert(0, 'chalice_app'); import app; "
        "print(sorted(app.app.handler_map))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "scale_up" in result.stdout and "on_upload_events" in result.stdout


def _admin_secret(env: dict[str, str]) -> str:
    from chalicelib.auth import admin_secret

    return admin_secret(Settings.from_env(env), ssm_client=lambda: None)()


def test_the_local_stack_alone_takes_the_plaintext_admin_token(caplog):
    local = {"FACEREC_ADMIN_TOKEN": "hunter2", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}
    assert _admin_secret(local) == "hunter2"
    assert not caplog.records


@pytest.mark.parametrize(
    "deployed",
    [
        {"AWS_LAMBDA_FUNCTION_NAME": "facerec-prod"},  # a deployed function
        {"AWS_LAMBDA_FUNCTION_NAME": "facerec-prod", "AWS_ENDPOINT_URL": "https://sqs.example"},
        {},  # the app against AWS itself, from a laptop
    ],
)
def test_a_deployed_stage_ignores_the_plaintext_admin_token_and_says_what_to_do(deployed, caplog):
    env = {"FACEREC_ADMIN_TOKEN": "hunter2", "FACEREC_STAGE_PREFIX": "facerec-prod", **deployed}
    with caplog.at_level("ERROR", logger="chalicelib.auth"):
        assert _admin_secret(env) == ""
    (record,) = caplog.records
    message = record.getMessage()
    assert "FACEREC_ADMIN_TOKEN is ignored" in message
    assert "FACEREC_ADMIN_TOKEN_PARAMETER" in message and "/facerec-prod/admin-token" in message
