"""The job workflow's definition (job_workflow.asl.json), loaded with the contract's expressions in,
and the one function that fills the deployment's placeholders."""

from __future__ import annotations

from .render import (
    CONTRACT_VALUES,
    DEFINITION_PATH,
    RenderError,
    load_definition,
    placeholders,
    render,
)

__all__ = [
    "CONTRACT_VALUES",
    "DEFINITION_PATH",
    "RenderError",
    "load_definition",
    "placeholders",
    "render",
]
