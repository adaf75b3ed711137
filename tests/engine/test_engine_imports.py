"""The engine's modules import one another without a circle (issue 20): a factory that picks an
implementation lives beside the interface, not in the module the implementations import."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "worker_ami" / "facerec_worker" / "engine"


def engine_imports() -> dict[str, set[str]]:
    """Each engine module's imports of its siblings, those inside functions too."""
    modules = {path.stem for path in ENGINE.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in ENGINE.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module] if node.module else [alias.name for alias in node.names]
                imported |= {name.split(".")[0] for name in names} & modules
        graph[path.stem] = imported - {path.stem}
    return graph


def test_the_engine_has_no_import_circle():
    try:
        order = list(TopologicalSorter(engine_imports()).static_order())
    except CycleError as error:
        raise AssertionError(
            f"an import circle among the engine's modules: {' -> '.join(error.args[1])}"
        ) from None
    assert "detection" in order and "detectors" in order
