"""Read infra/template.yaml and package it: the workflow's definition rendered into the template.

DefinitionSubstitutions is honoured by AWS but not by moto, so the definition is rendered into a
Fn::Sub, which both honour: one packaged template serves `make deploy` (infra.deploy) and the local
stack (local_service.cloudformation, which also applies what moto's CloudFormation skips).

    python -m infra.stack package > packaged.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from statemachine import load_definition, render

__all__ = ["DEFAULT_TEMPLATE", "ROOT", "StackError", "load_template", "package_template"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = ROOT / "infra" / "template.yaml"


class StackError(RuntimeError):
    """The stack did not reach CREATE_COMPLETE, or the template asks for what we cannot do."""


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, !Sub …) read as their long forms."""


def _construct_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    # _CfnLoader is a yaml.SafeLoader: no arbitrary objects from the template.
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)


def _as_sub_expression(value: Any) -> str:
    """A DefinitionSubstitutions value as text inside Fn::Sub: Ref → ${X}, GetAtt → ${X.Attr}."""
    if isinstance(value, str):
        return value.replace("${", "${!")
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return "${" + value["Ref"] + "}"
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    raise StackError(
        f"a DefinitionSubstitutions value must be a string, Ref or GetAtt, not {value!r}"
    )


def package_template(template: dict[str, Any], root: Path = ROOT) -> dict[str, Any]:
    """The template with each state machine's definition file rendered into its DefinitionString."""
    packaged = json.loads(json.dumps(template))
    for resource in packaged["Resources"].values():
        definition_file = resource.get("Metadata", {}).get("facerec:DefinitionFile")
        if resource["Type"] != "AWS::StepFunctions::StateMachine" or not definition_file:
            continue
        properties = resource["Properties"]
        substitutions = properties.pop("DefinitionSubstitutions", {})
        text = render(
            load_definition(root / definition_file),
            {key: _as_sub_expression(value) for key, value in substitutions.items()},
        )
        json.loads(text)  # a broken definition fails here rather than at CreateStateMachine
        properties["DefinitionString"] = {"Fn::Sub": text}
    return packaged


def main(argv: list[str]) -> int:
    if argv[1:] != ["package"]:
        print(__doc__, file=sys.stderr)
        return 2
    json.dump(package_template(load_template()), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
