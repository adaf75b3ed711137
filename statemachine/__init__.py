"""The job workflow's definition (job_workflow.asl.json) and the one function that fills its
placeholders."""

from __future__ import annotations

from .render import DEFINITION_PATH, RenderError, load_definition, placeholders, render

__all__ = ["DEFINITION_PATH", "RenderError", "load_definition", "placeholders", "render"]
