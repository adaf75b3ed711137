"""The tree's import graph: no module imports itself through others, and `infra/`, which holds only
what goes to AWS, never loads moto (issue 20). Imports inside functions count: a circle hidden in
a function still ties the modules together."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Each first-party package and the folder it is imported from.
PACKAGES = {
    "chalicelib": ROOT / "chalice_app",
    "facerec_worker": ROOT / "worker_ami",
    "infra": ROOT,
    "local_service": ROOT,
    "facerec_client": ROOT,
    "statemachine": ROOT,
    "bench": ROOT,
    "sim": ROOT,
}


def _module_name(path: Path, base: Path) -> str:
    parts = path.relative_to(base).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path, base): path
        for package, base in PACKAGES.items()
        for path in (base / package).rglob("*.py")
    }


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def import_graph() -> dict[str, set[str]]:
    """Each first-party module's first-party imports: `from a import b` reaches the module a.b
    when there is one, else a."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(module, path, node)
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    imported.add(submodule if submodule in modules else source)
        graph[module] = {name for name in imported if name in modules} - {module}
    return graph


def test_the_tree_has_no_import_circle():
    graph = import_graph()
    assert "local_service.moto_process" in graph and "facerec_worker.engine.detection" in graph
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        raise AssertionError(f"an import circle: {' -> '.join(error.args[1])}") from None


def test_the_check_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        assert set(error.args[1]) == {"a", "b", "c"}
    else:
        raise AssertionError("a -> b -> c -> a is a circle")


def test_infra_names_no_moto():
    infra = {
        f"{path.relative_to(ROOT)}: {alias}"
        for path in (ROOT / "infra").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
        if alias.split(".")[0] in ("moto", "local_service")
    }
    assert infra == set()


def test_importing_infra_loads_no_moto():
    code = (
        "import json, sys, pkgutil, importlib, infra; "
        "[importlib.import_module(f'infra.{m.name}') for m in "
        "pkgutil.iter_modules(infra.__path__)]; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "infra" in loaded and "moto" not in loaded
