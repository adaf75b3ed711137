"""`make deploy` / `make destroy` say what is missing before they touch AWS (and these tests
never reach it: every case stops before the first call)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_deploy(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """python -m infra.deploy with no AWS configuration at all, plus `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "infra.deploy", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_a_worker_ami_deploy_says_to_run_make_ami_first():
    done = run_deploy("deploy", "--stage", "dev", AWS_DEFAULT_REGION="us-east-1")
    assert done.returncode == 1
    assert "make ami" in done.stderr and "WORKER_AMI=" in done.stderr


@pytest.mark.parametrize(
    "command", [["deploy", "--worker-ami", "ami-0123456789abcdef0"], ["destroy"], ["preflight"]]
)
def test_without_credentials_it_says_how_to_configure_them(command):
    done = run_deploy(*command, AWS_DEFAULT_REGION="us-east-1")
    assert done.returncode == 1
    assert "No AWS credentials found" in done.stderr and "aws configure" in done.stderr


def test_without_a_region_it_says_how_to_set_one():
    done = run_deploy("destroy", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    assert done.returncode == 1
    assert "No AWS region set" in done.stderr and "AWS_DEFAULT_REGION" in done.stderr


def test_make_deploy_passes_the_stage_and_the_ami_make_ami_wrote():
    done = subprocess.run(
        ["make", "-n", "deploy", "STAGE=prod", "WORKER_AMI=ami-0abc", "VENV=.venv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert re.search(
        r"-m infra\.deploy deploy --stage prod --worker-ami ami-0abc$", done.stdout, re.M
    ), done.stdout


def test_make_ami_gives_packer_every_variable_the_template_requires():
    done = subprocess.run(
        ["make", "-n", "ami", "VENV=.venv"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    build = done.stdout[done.stdout.index("packer build") :]
    template = (ROOT / "worker_ami" / "packer" / "worker.pkr.hcl").read_text()
    blocks = re.findall(r'^variable "(\w+)" \{(.*?)^\}', template, re.M | re.S)
    required = {name for name, body in blocks if "default" not in body}
    assert required == {"wheel", "weights_sha256"}
    assert required | {"region"} == set(re.findall(r"-var (\w+)=", build))
    assert "worker_ami/packer/worker.pkr.hcl" in build
