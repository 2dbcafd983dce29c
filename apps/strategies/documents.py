"""The strategy document (parameters, indicators, rules): its problems keyed by field, its warnings,
and its warm-up.

Problems come in the shape of the API's error ``fields``: ``{"parameters": {"stop_loss_pct": [...]},
"indicators": {"1": [...]}, "rules": {"0": {"condition": [message], "position": 4, "expected": ...}}}``.
A condition's message quotes it and says where the problem is and what was expected there. Warnings
do not refuse a document: ``[{"code": "unused_parameter", "parameter": "rsi_oversold", "message"}]``.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping
from typing import Any

from apps.market.domain.indicators import REGISTRY, IndicatorError, get_indicator
from apps.market.queries import parse_indicator_list
from apps.strategies.engine import RISK_PARAMETERS, BacktestError, RiskSettings, RuleError
from apps.strategies.engine.parameters import number_written_at, strategy_parameters_read, unused_parameters
from apps.strategies.engine.rules import ACTIONS, MAX_CONDITION_LENGTH, Rule, as_rules, validate
from apps.strategies.engine.rules.evaluate import indicator_parameters, parameter_bounds, walk
from apps.strategies.engine.rules.syntax import (
    EXTERNAL_SERIES,
    KEYWORDS,
    PRICE_FIELDS,
    External,
    IndicatorCall,
    Lag,
)

MAX_RULES = 50
MAX_INDICATORS = 30
MAX_PARAMETERS = 50
# Every parameter is a period, a threshold or a fraction: nothing needs more, and the bound keeps an
# absurd number (1e30, a 400-digit integer) from ever reaching the engine or the database. The same
# bound applies to LLM answers (apps.strategies.generation.schema).
MAX_PARAMETER_MAGNITUDE = 1e9
# Bars loaded before a window so that indicators have settled: at least this many, and three times
# the longest indicator warm-up (recursive indicators such as EMA and RSI need several periods).
MIN_WARMUP_BARS = 500
WARMUP_FACTOR = 3

# The code of a warning about a parameter the strategy never reads.
UNUSED_PARAMETER = "unused_parameter"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHORT_ACTIONS = ("short", "cover")

Problems = dict[str, Any]


def document_problems(*, parameters: object, indicators: object, rules: object) -> Problems:
    """Every problem of a strategy document, by field; empty when the document is valid.

    Rules are checked against the parameters, so they are only checked once the parameters are valid.
    """
    problems: Problems = {}
    if found := parameter_problems(parameters):
        problems["parameters"] = found
    if found := indicator_problems(indicators):
        problems["indicators"] = found
    if "parameters" not in problems and (found := rule_problems(rules, parameters)):  # type: ignore[arg-type]
        problems["rules"] = found
    return problems


def parameter_problems(parameters: object) -> Problems | list[str]:
    """Names must be identifiers a condition can use, values numbers (``allow_short`` true or false),
    risk parameters within their limits."""
    if not isinstance(parameters, Mapping):
        return ["parameters must be an object mapping names to numbers"]
    if len(parameters) > MAX_PARAMETERS:
        return [f"at most {MAX_PARAMETERS} parameters are allowed, got {len(parameters)}"]
    problems: Problems = {}
    for name, value in parameters.items():
        if problem := _parameter_problem(str(name), value):
            problems[str(name)] = [problem]
    return problems


def _parameter_problem(name: str, value: object) -> str | None:
    if not _IDENTIFIER.match(name):
        return "a parameter name must be letters, digits and underscores, not starting with a digit"
    taken = name.lower() in PRICE_FIELDS or name.lower() in KEYWORDS or name.upper() in EXTERNAL_SERIES
    if taken or name.upper() in REGISTRY:
        return f"{name!r} is a price field, keyword, series or indicator name; choose another name"
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and not _in_range(value):
        return f"must be a finite number from {-MAX_PARAMETER_MAGNITUDE:g} to {MAX_PARAMETER_MAGNITUDE:g}"
    if name in RISK_PARAMETERS:
        try:
            RiskSettings.from_parameters({name: value})
        except BacktestError as error:
            return str(error)
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    return None


def _in_range(value: numbers.Real) -> bool:
    """Finite and within the bound, compared without converting a huge integer to a float."""
    if isinstance(value, numbers.Integral):
        return -MAX_PARAMETER_MAGNITUDE <= value <= MAX_PARAMETER_MAGNITUDE
    return math.isfinite(value) and abs(value) <= MAX_PARAMETER_MAGNITUDE


def indicator_problems(indicators: object) -> Problems | list[str]:
    """Each entry names a registry indicator, optionally with arguments: ``RSI``, ``SMA(50)``."""
    if not isinstance(indicators, list):
        return ["indicators must be a list of indicator names such as RSI or SMA(50)"]
    if len(indicators) > MAX_INDICATORS:
        return [f"at most {MAX_INDICATORS} indicators are allowed, got {len(indicators)}"]
    problems: Problems = {}
    for index, entry in enumerate(indicators):
        try:
            if not isinstance(entry, str) or len(parse_indicator_list(entry)) != 1:
                raise IndicatorError(f"give one indicator per entry, e.g. RSI or SMA(50); got {entry!r}")
        except IndicatorError as error:
            problems[str(index)] = [str(error)]
    return problems


def rule_problems(rules: object, parameters: Mapping[str, object]) -> Problems | list[str]:
    """Each rule needs a condition the engine accepts against ``parameters``, an action (``short`` and
    ``cover`` only with ``allow_short``) and a whole-number priority; one rule must open positions."""
    if not isinstance(rules, list) or not rules:
        return ['give at least one rule: {"condition": "RSI < 30", "action": "buy", "priority": 1}']
    if len(rules) > MAX_RULES:
        return [f"at most {MAX_RULES} rules are allowed, got {len(rules)}"]
    problems: Problems = {}
    for index, rule in enumerate(rules):
        if found := _rule_problem(rule, parameters):
            problems[str(index)] = found
    if problems:
        return problems
    entries = ("buy", *(("short",) if parameters.get("allow_short") is True else ()))
    if not any(str(rule["action"]).lower() in entries for rule in rules):
        return [f"no rule opens a position: add a rule whose action is {' or '.join(entries)}"]
    return {}


def _rule_problem(rule: object, parameters: Mapping[str, object]) -> Problems:
    if not isinstance(rule, Mapping):
        return {"rule": ['a rule is an object {"condition", "action", "priority"}']}
    problems: Problems = {}
    missing = [key for key in ("condition", "action") if key not in rule]
    for key in missing:
        problems[key] = ["this field is required"]
    unknown = sorted(set(rule) - {"condition", "action", "priority"})
    if unknown:
        problems["rule"] = [f"unknown field(s) {', '.join(unknown)}; a rule has condition, action, priority"]
    action = rule.get("action")
    if "action" in rule and (problem := _action_problem(action, parameters)):
        problems["action"] = [problem]
    priority = rule.get("priority", 1)
    if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
        problems["priority"] = [f"must be a whole number >= 0 (lower wins), got {priority!r}"]
    if "condition" in rule:
        problems.update(_condition_problem(rule["condition"], parameters))
    return problems


def _action_problem(action: object, parameters: Mapping[str, object]) -> str | None:
    if not isinstance(action, str) or action.lower() not in ACTIONS:
        return f"{action!r} is not an action; expected one of {', '.join(ACTIONS)}"
    if action.lower() in _SHORT_ACTIONS and parameters.get("allow_short") is not True:
        return f"{action.lower()} needs shorting allowed: set allow_short to true in parameters"
    return None


def _condition_problem(condition: object, parameters: Mapping[str, object]) -> Problems:
    if not isinstance(condition, str):
        return {"condition": [f"must be text such as 'RSI < 30', got {condition!r}"]}
    if len(condition) > MAX_CONDITION_LENGTH:
        return {"condition": [f"at most {MAX_CONDITION_LENGTH} characters, got {len(condition)}"]}
    try:
        validate(condition, parameters)
    except RuleError as error:
        where = {} if error.position is None else {"position": error.position}
        return {"condition": [str(error)], **where, "expected": error.expected}
    return {}


def document_warnings(*, parameters: object, rules: object) -> list[dict[str, str]]:
    """What a valid document holds that it probably does not mean: each parameter the strategy never
    reads (``unused_parameter``; see :mod:`apps.strategies.engine.parameters`), naming the first rule
    that writes its value as a number instead. Empty for a document whose rules do not parse."""
    if not isinstance(parameters, Mapping) or not isinstance(rules, list):
        return []
    try:
        parsed = as_rules(rules)
        unused = unused_parameters(parsed, parameters)
    except (RuleError, TypeError):
        return []
    return [_unused_warning(parsed, name, parameters[name]) for name in unused]


def _unused_warning(rules: list[Rule], name: str, value: object) -> dict[str, str]:
    index = number_written_at(rules, value)
    if index is None:
        hint = "name it in a condition to use it, or remove it"
    else:
        hint = (
            f"rule {index} ({rules[index].condition!r}) writes its value {value!r} as a number: "
            f"write {name} there to use the parameter"
        )
    return {"code": UNUSED_PARAMETER, "parameter": name, "message": f"no rule reads {name}; {hint}"}


def external_series(rules: Iterable[Mapping[str, object]]) -> set[str]:
    """External series (``ML_PROBA``) the rules read; a backtest cannot supply them yet."""
    return {node.name for rule in as_rules(rules) for node in walk(rule.node) if isinstance(node, External)}


def tunable_parameters(rules: Iterable[Mapping[str, object]], parameters: Mapping[str, object]) -> list[str]:
    """Numeric parameters the rules read, as thresholds or indicator arguments (risk settings aside):
    a parameter no rule reads is never tuned."""
    return sorted(
        name
        for name in strategy_parameters_read(rules) - RISK_PARAMETERS
        if name in parameters
        and isinstance(parameters[name], numbers.Real)
        and not isinstance(parameters[name], bool)
    )


def neighbourhood(
    rules: Iterable[Mapping[str, object]], parameters: Mapping[str, object], multipliers: Iterable[float]
) -> dict[str, list[float | int]]:
    """A small grid around the current values: each tunable parameter times each multiplier (whole
    numbers stay whole), always including the current value, without values its indicator rejects."""
    rules = as_rules(rules)
    bounds = {name: param for rule in rules for name, param in parameter_bounds(rule.node).items()}
    space: dict[str, list[float | int]] = {}
    for name in tunable_parameters(rules, parameters):
        current = parameters[name]
        values = {current}
        for factor in multipliers:
            scaled = current * factor
            values.add(round(scaled) if isinstance(current, int) else float(f"{scaled:.6g}"))
        if name in bounds:
            values = {value for value in values if _fits(bounds[name], value)}
        space[name] = sorted(values)
    return space


def _fits(param: Any, value: float) -> bool:
    try:
        param.validate(value)
    except IndicatorError:
        return False
    return True


def warmup_bars(rules: Iterable[Mapping[str, object]], parameter_sets: Iterable[Mapping[str, object]]) -> int:
    """Bars to load before a window so every indicator the rules use, with any of the given parameter
    sets, has settled when the window starts."""
    rules = as_rules(rules)
    parameter_sets = list(parameter_sets)
    longest = 0
    for rule in rules:
        for node in walk(rule.node):
            if isinstance(node, Lag):
                longest = max(longest, node.bars)
            if not isinstance(node, IndicatorCall):
                continue
            spec = get_indicator(node.name)
            for parameters in parameter_sets:
                try:
                    resolved = indicator_parameters(rule.condition, node, parameters)
                except RuleError:  # a trial the strategy rejects; it is reported as failed, not run
                    continue
                longest = max(longest, spec.warmup_fn(resolved))
    return max(MIN_WARMUP_BARS, WARMUP_FACTOR * longest)
