"""Settings come from the environment, with defaults that never break an import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chalicelib.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_follow_the_stage_prefix():
    settings = Settings.from_env({"FACEREC_ACCOUNT_ID": "111122223333"})
    assert (settings.stage_prefix, settings.jobs_table, settings.input_bucket) == ("facerec-dev", "facerec-dev-jobs", "facerec-dev-input-111122223333")
    assert settings.compat_wait_seconds < 29  # API Gateway's limit
    prod = Settings.from_env({"FACEREC_STAGE_PREFIX": "facerec-prod"})
    assert (prod.upload_events_queue, prod.worker_launch_template) == ("facerec-prod-upload-events", "facerec-prod-worker")


def test_variables_override_one_by_one_and_blank_means_default():
    settings = Settings.from_env({
        "FACEREC_JOBS_TABLE": "custom-jobs",
        "FACEREC_MAX_WORKERS": "3",
        "FACEREC_ALLOWED_CONTENT_TYPES": "image/png, image/webp",
        "FACEREC_UPLOAD_EXPIRY_MINUTES": " ",
    })
    assert settings.jobs_table == "custom-jobs" and settings.max_workers == 3
    assert settings.allowed_content_types == ("image/png", "image/webp")
    assert settings.upload_expiry_minutes == 15


def test_the_admin_token_is_not_in_the_repr():
    assert "hunter2" not in repr(Settings.from_env({"FACEREC_ADMIN_TOKEN": "hunter2"}))


def test_the_app_imports_with_an_empty_environment():
    code = "import sys; sys.path.insert(0, 'chalice_app'); import app; print(sorted(app.app.handler_map))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "scale_up" in result.stdout and "on_upload_events" in result.stdout
