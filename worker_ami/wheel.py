"""Build the worker's own wheel: the worker, its engine and chalicelib.contract, nothing else.

    python worker_ami/wheel.py DIR     # writes DIR/facerec_worker-<version>-py3-none-any.whl

The project's wheel holds every deployable (the API, infra, the local stack, the simulator) and
the control plane's tools; a worker instance needs none of them. This stages the worker's files
with a pyproject of its own, whose version, pins (the project's `dependencies`) and console
scripts (those that run facerec_worker) are read from the project's pyproject.toml, so they are
written once. torch, torchvision and facenet-pytorch are not among them: provision.sh installs
those first, as `make setup` does.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "facerec-worker"
DESCRIPTION = "The facerec worker: the queue loop, its lifecycle and the recognition engine."
# Package → where it lives in the checkout. chalicelib itself only as the contract's parent.
PACKAGES = {
    "facerec_worker": ROOT / "worker_ami" / "facerec_worker",
    "chalicelib/contract": ROOT / "chalice_app" / "chalicelib" / "contract",
}
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def worker_pyproject(project: dict) -> str:
    """The worker's pyproject.toml, from the project's (TOML written as JSON values, which it
    accepts)."""
    meta = project["project"]
    scripts = {
        name: target
        for name, target in meta["scripts"].items()
        if target.startswith("facerec_worker")
    }
    lines = [
        "[build-system]",
        'requires = ["setuptools>=68"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f"name = {json.dumps(NAME)}",
        f"version = {json.dumps(meta['version'])}",
        f"description = {json.dumps(DESCRIPTION)}",
        f"requires-python = {json.dumps(meta['requires-python'])}",
        f"dependencies = {json.dumps(meta['dependencies'])}",
        "",
        "[project.scripts]",
        *(f"{name} = {json.dumps(target)}" for name, target in sorted(scripts.items())),
        "",
        "[tool.setuptools.packages.find]",
        'include = ["facerec_worker*", "chalicelib", "chalicelib.contract*"]',
    ]
    return "\n".join(lines) + "\n"


def build(out_dir: Path) -> Path:
    """The worker's wheel in out_dir."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="facerec-worker-wheel-") as scratch:
        stage = Path(scratch)
        for package, source in PACKAGES.items():
            shutil.copytree(source, stage / package, ignore=_IGNORED)
        # The contract's parent, empty as it is in chalicelib: importing the contract runs nothing
        # else.
        (stage / "chalicelib" / "__init__.py").write_text("", encoding="utf-8")
        (stage / "pyproject.toml").write_text(worker_pyproject(project), encoding="utf-8")
        # No build isolation: setuptools comes from this environment, so the build works offline.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(out_dir),
                str(stage),
            ],
            check=True,
        )
    return next(out_dir.glob(f"{NAME.replace('-', '_')}-{project['project']['version']}-*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python worker_ami/wheel.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("out_dir", type=Path)
    print(build(parser.parse_args(argv).out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
