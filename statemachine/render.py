"""Fill `${Name}` placeholders in the ASL file, the way DefinitionSubstitutions does on AWS.

Not `string.Template`: it would also touch `$.path` and `$$.Execution` references. Only
`${Word}` is a placeholder, and every one must have a value: a typo fails here, not at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DEFINITION_PATH", "RenderError", "load_definition", "placeholders", "render"]

DEFINITION_PATH = Path(__file__).with_name("job_workflow.asl.json")
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


class RenderError(ValueError):
    """A placeholder without a value, or a value for no placeholder."""


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def render(text: str, values: Mapping[str, str]) -> str:
    """`text` with every `${Name}` replaced by values[Name]; unknown or unused names raise
    RenderError."""
    found = placeholders(text)
    missing = sorted(found - set(values))
    unused = sorted(set(values) - found)
    if missing or unused:
        raise RenderError(
            f"placeholders without values: {missing}; values without placeholders: {unused}"
        )
    return _PLACEHOLDER.sub(lambda match: values[match[1]], text)


def load_definition(path: Path = DEFINITION_PATH) -> str:
    return path.read_text(encoding="utf-8")
