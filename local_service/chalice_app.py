"""chalice_app/app.py loaded as a module, as Chalice's local server and Lambda's runtime load it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

CHALICE_PROJECT = Path(__file__).resolve().parent.parent / "chalice_app"


def load_chalice_app(module_name: str = "facerec_chalice_app") -> ModuleType:
    """chalice_app/app.py as a module named `module_name`; its decorators read the environment, so
    set that first. Another name imports it anew, as Chalice does for each stage it packages."""
    spec = importlib.util.spec_from_file_location(module_name, CHALICE_PROJECT / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
