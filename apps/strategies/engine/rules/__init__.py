"""The strategy rule language: parse conditions safely, evaluate them over candles, combine rules."""

from .evaluate import (
    IndicatorCache,
    MissingSeriesError,
    evaluate,
    parameter_bounds,
    parameters_read,
    referenced_indicators,
    referenced_parameters,
    validate,
)
from .signals import ACTIONS, Action, Rule, as_rules, signals
from .syntax import MAX_CONDITION_LENGTH, MAX_DEPTH, Condition, Node, RuleError, RuleSyntaxError, parse

__all__ = [
    "ACTIONS",
    "MAX_CONDITION_LENGTH",
    "MAX_DEPTH",
    "Action",
    "Condition",
    "IndicatorCache",
    "MissingSeriesError",
    "Node",
    "Rule",
    "RuleError",
    "RuleSyntaxError",
    "as_rules",
    "evaluate",
    "parameter_bounds",
    "parameters_read",
    "parse",
    "referenced_indicators",
    "referenced_parameters",
    "signals",
    "validate",
]
