"""The worker AMI's recipe: the Packer template validates, and it installs what the tests ran."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from facerec_worker.engine.config import VGGFACE2_SHA256

ROOT = Path(__file__).resolve().parent.parent
AMI = ROOT / "worker_ami"
PACKER = shutil.which("packer")


@pytest.mark.skipif(PACKER is None, reason="packer is not installed (make setup-system installs Debian's)")
def test_the_packer_template_validates(tmp_path):
    wheel = tmp_path / "facerec-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    done = subprocess.run(
        [PACKER, "validate", f"-var=wheel={wheel}", f"-var=weights_sha256={VGGFACE2_SHA256}", "worker.pkr.hcl"],
        cwd=AMI / "packer", capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_provisioning_script_is_valid_bash():
    done = subprocess.run(["bash", "-n", str(AMI / "packer" / "provision.sh")], capture_output=True, text=True)
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
