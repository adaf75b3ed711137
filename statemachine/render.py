"""Fill `${Name}` placeholders in the ASL file, the way DefinitionSubstitutions does on AWS.

Not `string.Template`: it would also touch `$.path` and `$$.Execution` references. Only
`${Word}` is a placeholder, and every one must have a value: a typo fails here, not at run time.

Two kinds of placeholder: the deployment's names (the table, the queue, the scale-up function),
which DefinitionSubstitutions gives on AWS and `render` fills; and the jobs table's transitions the
workflow writes, which are chalicelib.contract's, filled when the file is loaded so that no copy
of an expression lives in the ASL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from chalicelib.contract.job_transitions import RECORD_FAILED_UNTAKEN, RECORD_QUEUED

__all__ = [
    "CONTRACT_VALUES",
    "DEFINITION_PATH",
    "RenderError",
    "load_definition",
    "placeholders",
    "render",
]

DEFINITION_PATH = Path(__file__).with_name("job_workflow.asl.json")
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
# The expressions of the workflow's "Record job as …" states, from the contract's transitions.
CONTRACT_VALUES = MappingProxyType(
    {
        "RecordQueuedUpdate": RECORD_QUEUED.update,
        "RecordQueuedCondition": RECORD_QUEUED.condition,
        "RecordFailedUpdate": RECORD_FAILED_UNTAKEN.update,
        "RecordFailedCondition": RECORD_FAILED_UNTAKEN.condition,
    }
)


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
    """The definition with the contract's values in, the deployment's placeholders left to
    `render`."""
    return _PLACEHOLDER.sub(
        lambda match: (
            json.dumps(CONTRACT_VALUES[match[1]])[1:-1] if match[1] in CONTRACT_VALUES else match[0]
        ),
        path.read_text(encoding="utf-8"),
    )
