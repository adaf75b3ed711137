"""The worker AMI's recipe: the Packer template validates, and it installs what the tests ran."""

from __future__ import annotations

import configparser
import email
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from chalicelib.contract.telemetry import worker_log_group
from facerec_worker.engine.config import VGGFACE2_SHA256
from facerec_worker.settings import WorkerSettings
from infra.stack import load_template

ROOT = Path(__file__).resolve().parent.parent
AMI = ROOT / "worker_ami"
PACKER = shutil.which("packer")


@pytest.mark.skipif(
    PACKER is None, reason="packer is not installed (make setup-system installs Debian's)"
)
def test_the_packer_template_validates(tmp_path):
    wheel = tmp_path / "facerec_worker-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    done = subprocess.run(
        [
            PACKER,
            "validate",
            f"-var=wheel={wheel}",
            f"-var=weights_sha256={VGGFACE2_SHA256}",
            "worker.pkr.hcl",
        ],
        cwd=AMI / "packer",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_provisioning_script_is_valid_bash():
    done = subprocess.run(
        ["bash", "-n", str(AMI / "packer" / "provision.sh")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_the_ami_installs_the_same_torch_and_facenet_pins_as_make_setup():
    makefile = (ROOT / "Makefile").read_text()
    provision = (AMI / "packer" / "provision.sh").read_text()
    for name in ("TORCH_PINS", "FACENET_PIN"):
        in_make = re.search(rf"^{name}\s*:=\s*(.+)$", makefile, re.M).group(1).strip()
        in_ami = re.search(rf'^{name}="(.+)"$', provision, re.M).group(1).strip()
        assert in_ami == in_make, name


def test_the_systemd_unit_starts_the_worker_console_script():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    unit = (AMI / "systemd" / "facerec-worker.service").read_text()
    assert scripts["facerec-worker"] == "facerec_worker.__main__:main"
    assert "ExecStart=/opt/facerec/venv/bin/facerec-worker\n" in unit
    assert "OnFailure=facerec-worker-failed.service" in unit


@pytest.fixture(scope="module")
def worker_wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("worker-wheel")
    subprocess.run(
        [sys.executable, str(AMI / "wheel.py"), str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(out.glob("facerec_worker-*.whl"))


def test_the_worker_wheel_holds_only_the_worker_and_the_contract(worker_wheel):
    with zipfile.ZipFile(worker_wheel) as wheel:
        names = wheel.namelist()
        metadata = email.message_from_bytes(
            wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        )
        entry_points = wheel.read(
            next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
    code = {n for n in names if ".dist-info/" not in n}
    assert code and {n.split("/")[0] for n in code} == {"facerec_worker", "chalicelib"}
    assert {n for n in code if n.startswith("chalicelib/")} - {"chalicelib/__init__.py"} == {
        n for n in code if n.startswith("chalicelib/contract/")
    }
    assert not [n for n in code if "__pycache__" in n]
    # Exactly the project's pins, and so nothing of the control plane's.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert metadata.get_all("Requires-Dist") == project["dependencies"]
    assert not [
        r for r in project["dependencies"] if r.split("=")[0] in ("chalice", "moto", "psutil")
    ]
    assert "facerec-worker = facerec_worker.__main__:main" in entry_points


def test_the_worker_wheel_runs_the_worker_without_the_rest_of_the_project(worker_wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(worker_wheel),
        ],
        check=True,
        timeout=300,
    )
    # -S: none of this environment's .pth files, so the project's editable install is out of reach;
    # third-party packages still come from its site-packages.
    code = (
        f"import sys; sys.path.insert(0, {str(target)!r}); "
        f"sys.path.append({sysconfig.get_paths()['purelib']!r}); "
        "import chalicelib, facerec_worker.worker, facerec_worker.__main__; "
        f"assert chalicelib.__file__.startswith({str(target)!r}), chalicelib.__file__; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('chalice', 'infra', "
        "'local_service', 'sim')))"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read_string((AMI / "systemd" / name).read_text())
    return parser


def test_the_workers_log_goes_to_the_file_the_cloudwatch_agent_ships_to_the_stages_group():
    """The unit appends the worker's lines to the file the agent collects, one stream per instance
    id; the agent's group is the stack's, from the user data's logs.env, which the logs unit
    reads."""
    worker = _unit("facerec-worker.service")
    log_file = "/var/log/facerec/worker.log"
    assert (
        worker["Service"]["StandardOutput"]
        == worker["Service"]["StandardError"]
        == f"append:{log_file}"
    )
    assert "facerec-logs.service" in worker["Unit"]["Wants"]
    assert {"facerec-logs.service", "amazon-cloudwatch-agent.service"} <= set(
        worker["Unit"]["After"].split()
    )

    agent = json.loads((AMI / "cloudwatch" / "agent.json").read_text())
    collected = {
        f["file_path"]: f for f in agent["logs"]["logs_collected"]["files"]["collect_list"]
    }
    assert collected[log_file]["log_stream_name"] == "{instance_id}"
    assert {f["log_group_name"] for f in collected.values()} == {"__FACEREC_LOG_GROUP__"}

    logs = (AMI / "systemd" / "facerec-logs.service").read_text()
    assert (
        "EnvironmentFile=/etc/facerec/logs.env" in logs
        and "s|__FACEREC_LOG_GROUP__|$FACEREC_LOG_GROUP|g" in logs
    )
    user_data = load_template()["Resources"]["WorkerLaunchTemplate"]["Properties"][
        "LaunchTemplateData"
    ]["UserData"]
    files = {
        f["path"]: f["content"]
        for f in yaml.safe_load(user_data["Fn::Base64"]["Fn::Sub"])["write_files"]
    }
    assert files["/etc/facerec/logs.env"].strip() == "FACEREC_LOG_GROUP=${WorkerLogGroup}"
    group = load_template()["Resources"]["WorkerLogGroup"]["Properties"]
    assert group["LogGroupName"] == {"Fn::Sub": worker_log_group("${StagePrefix}")}
    assert group["RetentionInDays"] == {"Ref": "WorkerLogRetentionDays"}


def test_the_workers_metrics_go_to_the_agents_emf_listener():
    """The agent opens its EMF listener (on its default socket, tcp:25888) and the worker's unit
    points the worker's metrics at it (facerec_worker/metrics.py)."""
    agent = json.loads((AMI / "cloudwatch" / "agent.json").read_text())
    assert agent["logs"]["metrics_collected"] == {"emf": {}}
    name, _, value = _unit("facerec-worker.service")["Service"]["Environment"].partition("=")
    assert WorkerSettings.from_env({name: value}).emf_agent_endpoint == "tcp://127.0.0.1:25888"


def test_the_ami_build_installs_the_agent_and_the_log_units():
    packer = (AMI / "packer" / "worker.pkr.hcl").read_text()
    provision = (AMI / "packer" / "provision.sh").read_text()
    for source in ("systemd/facerec-logs.service", "cloudwatch/agent.json"):
        assert f"../{source}" in packer
    assert "gpg --batch --verify /tmp/cwagent.deb.sig /tmp/cwagent.deb" in provision
    assert "systemctl enable facerec-logs.service facerec-worker.service" in provision
