"""The strategies app's input error: every service validates first and raises it, writing nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class StrategyInputError(ValueError):
    """Bad input to a strategies service; ``fields`` maps API field names to their problems.
    Nothing was written."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        super().__init__(_first_problem(fields))


def _first_problem(fields: Mapping[str, Any]) -> str:
    name, problem = next(iter(fields.items()))
    if isinstance(problem, Mapping):
        return f"{name}: {_first_problem(problem)}"
    return f"{name}: {problem[0] if isinstance(problem, list) else problem}"


def raise_if_problems(problems: dict[str, Any]) -> None:
    if problems:
        raise StrategyInputError(problems)
