"""The worker AMI's recipe: the Packer template validates, and it installs what the tests ran."""

from __future__ import annotations

import email
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from facerec_worker.engine.config import VGGFACE2_SHA256

ROOT = Path(__file__).resolve().parent.parent
AMI = ROOT / "worker_ami"
PACKER = shutil.which("packer")


@pytest.mark.skipif(PACKER is None, reason="packer is not installed (make setup-system installs Debian's)")
def test_the_packer_template_validates(tmp_path):
    wheel = tmp_path / "facerec_worker-0.1.0-py3-none-any.whl"
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


@pytest.fixture(scope="module")
def worker_wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("worker-wheel")
    subprocess.run([sys.executable, str(AMI / "wheel.py"), str(out)], check=True, capture_output=True, timeout=300)
    return next(out.glob("facerec_worker-*.whl"))


def test_the_worker_wheel_holds_only_the_worker_and_the_contract(worker_wheel):
    with zipfile.ZipFile(worker_wheel) as wheel:
        names = wheel.namelist()
        metadata = email.message_from_bytes(wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))))
        entry_points = wheel.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    code = {n for n in names if ".dist-info/" not in n}
    assert code and {n.split("/")[0] for n in code} == {"facerec_worker", "chalicelib"}
    assert {n for n in code if n.startswith("chalicelib/")} - {"chalicelib/__init__.py"} == {n for n in code if n.startswith("chalicelib/contract/")}
    assert not [n for n in code if "__pycache__" in n]
    # Exactly the project's pins, and so nothing of the control plane's.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert metadata.get_all("Requires-Dist") == project["dependencies"]
    assert not [r for r in project["dependencies"] if r.split("=")[0] in ("chalice", "moto", "psutil")]
    assert "facerec-worker = facerec_worker.__main__:main" in entry_points


def test_the_worker_wheel_runs_the_worker_without_the_rest_of_the_project(worker_wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(worker_wheel)], check=True, timeout=300)
    # -S: none of this environment's .pth files, so the project's editable install is out of reach;
    # third-party packages still come from its site-packages.
    code = (
        f"import sys; sys.path.insert(0, {str(target)!r}); sys.path.append({sysconfig.get_paths()['purelib']!r}); "
        "import chalicelib, facerec_worker.worker, facerec_worker.__main__; "
        f"assert chalicelib.__file__.startswith({str(target)!r}), chalicelib.__file__; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('chalice', 'infra', 'local_service', 'sim')))"
    )
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
