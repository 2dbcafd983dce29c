"""Validating a parsed LLM answer against the JSON Schema its caller asked for (``jsonschema``).

Callers keep only the checks a schema cannot express (a rule that must parse, a name used once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

MAX_MESSAGE_CHARS = 300


def schema_problem(schema: Mapping[str, Any], answer: object) -> str | None:
    """The most relevant way ``answer`` breaks ``schema``, as ``where: what``; None when it fits."""
    error = best_match(Draft202012Validator(schema).iter_errors(answer))
    return None if error is None else f"{_where(error)}: {_message(error)}"


def check_schema(schema: Mapping[str, Any], answer: object) -> None:
    """Raise ValueError naming the problem unless ``answer`` fits ``schema``."""
    if (problem := schema_problem(schema, answer)) is not None:
        raise ValueError(problem)


def _where(error: ValidationError) -> str:
    """``strategies[0].rules[1].action``: the failing value's place in the answer."""
    where = ""
    for part in error.absolute_path:
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
    return where or "the answer"


def _message(error: ValidationError) -> str:
    """The validator's message, without quoting a long or huge value back."""
    limit = error.validator_value
    if error.validator in ("maxItems", "minItems"):
        bound = "at most" if error.validator == "maxItems" else "at least"
        return f"must have {bound} {limit} items, has {len(error.instance)}"
    if error.validator in ("maximum", "minimum"):
        return f"must be {'at most' if error.validator == 'maximum' else 'at least'} {limit:g}"
    if error.validator in ("maxLength", "minLength"):
        bound = "at most" if error.validator == "maxLength" else "at least"
        return f"must be {bound} {limit} characters long"
    message = error.message
    return message if len(message) <= MAX_MESSAGE_CHARS else f"{message[:MAX_MESSAGE_CHARS]}..."
