"""IAM's evaluation of identity policies for one request, as the local stack enforces it.

A request is allowed when at least one statement allows it and none denies it; a statement applies
when its Action and Resource match (wildcards; actions without regard to case) and every condition
holds. Policy variables (`${ec2:InstanceID}`) take the request's single value of the key, in the
Resource element and in string and ARN conditions; a variable the request has no single value for
matches nothing. Only the condition operators the template uses are known (StringEquals,
StringLike, ArnEquals, ArnLike, and ForAllValues over them): any other raises rather than guess,
so a policy the local stack cannot read fails loudly instead of passing.

No permission boundary, service control policy or resource policy takes part: the template has
none that grants anything (its bucket policies only deny plain HTTP, which the local stack speaks).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

__all__ = ["PolicyEvaluationError", "Request", "allowed", "fill"]


class PolicyEvaluationError(ValueError):
    """A statement uses an element or operator this evaluator does not know."""


@dataclass(frozen=True)
class Request:
    """One action on one resource, with the condition keys the request carries (a list for a
    multivalued key such as dynamodb:LeadingKeys)."""

    action: str
    resource: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)


_POLICY_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_KNOWN_ELEMENTS = frozenset({"Sid", "Effect", "Action", "Resource", "Condition"})


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def fill(pattern: str, context: Mapping[str, Any]) -> str | None:
    """`pattern` with its policy variables replaced by the request's values; None when one has no
    single value in the request (IAM then matches nothing with it)."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        found = context.get(match[1])
        if found is None or isinstance(found, list):
            missing = True
            return ""
        return str(found)

    filled = _POLICY_VARIABLE.sub(value, pattern)
    return None if missing else filled


def _compare(operator: str, actual: str, expected: str) -> bool:
    if operator in ("StringEquals", "ArnEquals"):
        return actual == expected
    if operator in ("StringLike", "ArnLike"):
        return fnmatchcase(actual, expected)
    raise PolicyEvaluationError(f"unknown condition operator {operator}")


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, Any]) -> bool:
    qualifier, _, base = operator.rpartition(":")
    wanted = [w for w in (fill(str(e), context) for e in _listed(expected)) if w is not None]
    actual = context.get(key)
    if qualifier == "ForAllValues":  # every value the request carries is wanted (none: holds)
        return all(
            any(_compare(base, str(v), e) for e in wanted)
            for v in _listed(actual if actual is not None else [])
        )
    if qualifier:
        raise PolicyEvaluationError(f"unknown condition qualifier {qualifier}")
    return (
        actual is not None
        and not isinstance(actual, list)
        and any(_compare(base, str(actual), e) for e in wanted)
    )


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    unknown = set(statement) - _KNOWN_ELEMENTS
    if unknown:
        raise PolicyEvaluationError(f"unknown statement elements {sorted(unknown)}")
    actions = [str(a).lower() for a in _listed(statement["Action"])]
    if not any(fnmatchcase(request.action.lower(), a) for a in actions):
        return False
    resources = (fill(str(r), request.context) for r in _listed(statement["Resource"]))
    if not any(r is not None and fnmatchcase(request.resource, r) for r in resources):
        return False
    return all(
        _condition_holds(operator, key, expected, request.context)
        for operator, block in statement.get("Condition", {}).items()
        for key, expected in block.items()
    )


def allowed(statements: Iterable[Mapping[str, Any]], request: Request) -> bool:
    """Whether these identity-policy statements allow `request`: some allow, none denies."""
    matching = [s for s in statements if _applies(s, request)]
    return bool(matching) and all(s["Effect"] == "Allow" for s in matching)
