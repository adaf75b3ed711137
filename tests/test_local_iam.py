"""IAM on the local stack: each part calls moto as its own role in the template, and a permission
missing from a role fails here, as AccessDenied, not at the first deploy (issue 20).

The service runs as `make run` starts it; the test changes the workers' role through moto's IAM as
an operator would, and never widens a policy.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest

from facerec_client import FacerecClient
from local_service.process import ADMIN_TOKEN, RunningService, local_service
from local_service.service import LocalOptions

FACES = Path(__file__).resolve().parent / "data" / "faces"
IDLE_SECONDS = 30
WORKER_ROLE = f"{LocalOptions().stage_prefix}-worker"
WORKER_POLICY = "worker"

pytestmark = pytest.mark.slow


def worker_policy(service: RunningService) -> dict:
    document = service.client("iam").get_role_policy(
        RoleName=WORKER_ROLE, PolicyName=WORKER_POLICY
    )["PolicyDocument"]
    # moto answers GetRolePolicy, for a policy its CloudFormation made, with the document's Python
    # repr rather than its JSON (AWS answers URL-encoded JSON, which boto3 decodes).
    return document if isinstance(document, dict) else ast.literal_eval(document)


def put_worker_policy(service: RunningService, document: dict) -> None:
    service.client("iam").put_role_policy(
        RoleName=WORKER_ROLE, PolicyName=WORKER_POLICY, PolicyDocument=json.dumps(document)
    )


def refusals(service: RunningService, action: str) -> list[str]:
    return [
        line
        for line in service.moto_log().read_text().splitlines()
        if "AccessDenied" in line and f"/{WORKER_ROLE}/i-" in line and f"may not {action} " in line
    ]


def test_a_worker_without_its_read_of_uploads_is_denied_then_recognizes_with_it_back(tmp_path):
    with local_service(tmp_path / "service.log", IDLE_SECONDS) as service:
        client = FacerecClient(service.url, admin_token=ADMIN_TOKEN)
        policy = worker_policy(service)
        (reads_photos,) = [s for s in policy["Statement"] if s["Action"] == "s3:GetObject"]
        put_worker_policy(
            service, {**policy, "Statement": [s for s in policy["Statement"] if s != reads_photos]}
        )

        denied = client.submit(FACES / "obama2.jpg")["job_id"]
        deadline = time.monotonic() + 180
        while not refusals(service, "s3:GetObject"):
            assert time.monotonic() < deadline, "no worker was refused the photo in 180 s"
            time.sleep(1)
        assert f"/uploads/{denied}/" in refusals(service, "s3:GetObject")[0]
        assert client.job(denied)["status"] != "DONE"

        put_worker_policy(service, policy)
        allowed = client.submit(FACES / "obama2.jpg")["job_id"]
        assert client.wait(allowed, timeout=180)["status"] == "DONE"
