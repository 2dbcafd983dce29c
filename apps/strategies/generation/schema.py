"""The contract of a strategy-generation answer: the prompt, the JSON Schema sent to the LLMs as their
structured output, and its validation.

The structure (keys, types, enums, lengths, bounds) is checked by ``apps.llm.validation`` (the
``jsonschema`` validator) against a stricter copy of the schema that was sent (vendors'
structured-output subsets cannot carry patterns and bounds); only what a schema cannot say is
checked by hand: parameter names used once, and each document as the rule language and
``documents`` judge a user's strategy (every condition parsed, never evaluated), long-only, free of
model series.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from apps.llm.validation import check_schema
from apps.market.domain.indicators import REGISTRY
from apps.strategies import documents
from apps.strategies.engine import RuleError
from apps.strategies.engine.parameters import unused_parameters
from apps.strategies.models import StrategyType

TEMPLATE, TEMPLATE_VERSION = "strategy_generation", "2"
MAX_CANDIDATES = 10
MAX_NAME_CHARS = 100
MAX_RATIONALE_CHARS = 1000
MAX_PRIORITY = 1000
# Generated strategies are long-only and read no model series: the context describes neither.
GENERATED_ACTIONS = ("buy", "sell")
GENERATED_TYPES = tuple(t for t in StrategyType.values if t != StrategyType.ML_SIGNAL)
# Python's re (what jsonschema uses): \Z, since $ would also accept a trailing newline.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _\-()/.,+%&]*\Z"

SYSTEM = (
    "You design rule-based trading strategies for a backtesting engine. You write conditions only in "
    "the engine's rule language described in the instructions; anything else is rejected. Answer only "
    "with the JSON object requested."
)


def _indicator_catalogue() -> str:
    lines = []
    for name, spec in REGISTRY.items():
        params = ", ".join(f"{p.name}={p.default:g}" for p in spec.params)
        outputs = "" if spec.outputs == ("value",) else f"; outputs .{', .'.join(spec.outputs)}"
        lines.append(f"- {name}({params}){outputs}")
    return "\n".join(lines)


INSTRUCTIONS = f"""Propose new long-only trading strategies for the market in the data block.
Each strategy is a list of rules; each rule has a condition, an action (buy opens a long position,
sell closes it) and a priority (a whole number, lower wins when several rules fire on one bar).

The rule language: comparisons (< <= > >= == !=, crosses_above, crosses_below) of price fields
(open high low close volume), numbers, strategy parameters and indicators, combined with and, or,
not and parentheses; arithmetic + - * /; the value N bars ago as x[N] (close[1], RSI(14)[2]).
Indicator arguments are numbers or parameter names: SMA(fast_period) crosses_above SMA(slow_period).
Multi-output indicators name their output: MACD(12,26,9).signal, BB(20,2).lower. Indicators:
{_indicator_catalogue()}

Parameters are a list of name/value pairs; every parameter a condition uses must be listed, and every
listed parameter must be used: write its name in the condition (RSI(rsi_period) < rsi_oversold), not
its value (RSI < 30 ignores rsi_oversold, and optimising it would change nothing). Optional
risk parameters (fractions, 0.02 = 2%): stop_loss_pct, take_profit_pct, trailing_stop_pct,
position_size_pct (above 0, at most 1); max_holding_bars (whole bars). List the indicators the rules
use, e.g. "RSI", "SMA(50)". Give each strategy a short name and a one-sentence rationale tied to the data.
Do not repeat the active strategies in the data block. Propose at most the "count" given in the data.
Strategies are judged on a later holdout period against buy-and-hold, so favour robust, simple rules."""


def _strict(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def answer_schema(count: int) -> dict[str, Any]:
    """The JSON Schema of an answer of 1..``count`` candidates, in the strict structured-output
    subset every vendor accepts (types, enums, required keys, item counts)."""
    candidate = _strict(
        {
            "name": {"type": "string"},
            "type": {"type": "string", "enum": list(GENERATED_TYPES)},
            "rationale": {"type": "string"},
            "parameters": {
                "type": "array",
                "items": _strict({"name": {"type": "string"}, "value": {"type": "number"}}),
            },
            "indicators": {"type": "array", "items": {"type": "string"}},
            "rules": {
                "type": "array",
                "items": _strict(
                    {
                        "condition": {"type": "string"},
                        "action": {"type": "string", "enum": list(GENERATED_ACTIONS)},
                        "priority": {"type": "integer"},
                    }
                ),
            },
        }
    )
    return _strict({"strategies": {"type": "array", "items": candidate, "minItems": 1, "maxItems": count}})


def validation_schema(count: int) -> dict[str, Any]:
    """The schema sent, tightened with what the structured-output subset cannot carry."""
    schema = copy.deepcopy(answer_schema(count))
    candidate = schema["properties"]["strategies"]["items"]["properties"]
    candidate["name"].update(minLength=1, maxLength=MAX_NAME_CHARS, pattern=NAME_PATTERN)
    candidate["rationale"]["maxLength"] = MAX_RATIONALE_CHARS
    value = candidate["parameters"]["items"]["properties"]["value"]
    value.update(minimum=-documents.MAX_PARAMETER_MAGNITUDE, maximum=documents.MAX_PARAMETER_MAGNITUDE)
    candidate["rules"]["items"]["properties"]["priority"].update(minimum=0, maximum=MAX_PRIORITY)
    return schema


def validate_answer(answer: Mapping[str, Any], *, count: int) -> None:
    """Raise ValueError naming the first problem unless ``answer`` has 1..``count`` candidates of the
    schema, each a valid long-only strategy document free of model series."""
    check_schema(validation_schema(count), answer)
    for index, candidate in enumerate(answer["strategies"]):
        try:
            _check_document(candidate)
        except ValueError as problem:
            raise ValueError(f"strategies[{index}] ({candidate['name']!r}): {problem}") from None


def _check_document(candidate: Mapping[str, Any]) -> None:
    parameters = _parameters(candidate["parameters"])
    rules = candidate["rules"]
    problems = documents.document_problems(
        parameters=parameters, indicators=candidate["indicators"], rules=rules
    )
    if problems:
        raise ValueError(_problem_text(problems))
    if reads := documents.external_series(rules):
        raise ValueError(f"generated strategies may not read model series ({', '.join(sorted(reads))})")


def _parameters(pairs: Sequence[Mapping[str, Any]]) -> dict[str, int | float]:
    """``[{"name", "value"}]`` (schema-valid) as the document's ``{name: value}``; whole floats
    become ints. Raises ValueError for a name used twice."""
    parameters: dict[str, int | float] = {}
    for position, pair in enumerate(pairs):
        name, value = pair["name"], pair["value"]
        if name in parameters:
            raise ValueError(f"parameters[{position}].name {name!r} is used more than once")
        parameters[name] = int(value) if float(value).is_integer() else float(value)
    return parameters


def _problem_text(problems: Mapping[str, Any], path: str = "") -> str:
    """The first problem of ``documents.document_problems`` as ``rules.0.condition: message``."""
    name, problem = next(iter(problems.items()))
    where = f"{path}.{name}" if path else str(name)
    if isinstance(problem, Mapping):
        return _problem_text(problem, where)
    return f"{where}: {problem[0] if isinstance(problem, list) else problem}"


def candidate_document(candidate: Mapping[str, Any]) -> dict[str, Any]:
    """A validated candidate as a strategy document (parameters as a dict)."""
    return {
        "name": candidate["name"],
        "type": candidate["type"],
        "rationale": candidate["rationale"],
        "parameters": _parameters(candidate["parameters"]),
        "indicators": list(candidate["indicators"]),
        "rules": [dict(rule) for rule in candidate["rules"]],
    }


def document_key(*, parameters: Mapping[str, Any], rules: Sequence[Mapping[str, Any]]) -> str:
    """Equal for two strategies with the same rules (whitespace, case of actions and order aside) and
    the same values of the parameters they read (one that no rule reads changes no signal): what makes
    a candidate a duplicate."""
    normalised = sorted(
        json.dumps([" ".join(str(r["condition"]).split()), str(r["action"]).lower(), r.get("priority", 1)])
        for r in rules
    )
    try:
        unused = set(unused_parameters(rules, parameters))
    except RuleError:  # a stored document the rule language no longer parses: compare it whole
        unused = set()
    read = {name: value for name, value in parameters.items() if name not in unused}
    return json.dumps({"rules": normalised, "parameters": read}, sort_keys=True)
