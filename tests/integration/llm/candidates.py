"""A strategy-candidate schema and strict validator like the strategies app's, for the llm tests."""

from __future__ import annotations

import re
from typing import Any

from apps.llm import services
from apps.llm.services import LLMResult

INDICATORS = ("RSI", "SMA", "EMA", "MACD")
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "indicator": {"type": "string", "enum": list(INDICATORS)},
        "period": {"type": "integer", "minimum": 2, "maximum": 200},
        "entry_below": {"type": "number", "minimum": 0, "maximum": 100},
        "exit_above": {"type": "number", "minimum": 0, "maximum": 100},
    },
    "required": ["name", "indicator", "period", "entry_below", "exit_above"],
    "additionalProperties": False,
}
FIELDS = frozenset(SCHEMA["properties"])
_NAME = re.compile(r"^[A-Za-z0-9 .-]{1,60}$")

VALID = {"name": "RSI dip", "indicator": "RSI", "period": 14, "entry_below": 30, "exit_above": 70}
SYSTEM = "You design rule-based trading strategies."
INSTRUCTIONS = "Propose one mean-reversion strategy for the market described."
CONTEXT = {"symbol": "BTCUSDT", "timeframe": "1h", "regime": "ranging", "rsi_14": 41.2}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_candidate(data: dict[str, Any]) -> None:
    """Raise ValueError naming the first problem: exactly the known fields, known values, in range."""
    if unknown := set(data) - FIELDS:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    if missing := FIELDS - set(data):
        raise ValueError(f"missing field(s): {', '.join(sorted(missing))}")
    if not isinstance(data["name"], str) or not _NAME.match(data["name"]):
        raise ValueError("name must be 1-60 letters, digits, spaces, dots or dashes")
    if data["indicator"] not in INDICATORS:
        raise ValueError(
            f"unknown indicator {str(data['indicator'])[:80]!r}; allowed: {', '.join(INDICATORS)}"
        )
    if not (isinstance(data["period"], int) and not isinstance(data["period"], bool)):
        raise ValueError("period must be an integer")
    if not 2 <= data["period"] <= 200:
        raise ValueError(f"period {data['period']} is out of range 2..200")
    for field in ("entry_below", "exit_above"):
        if not _number(data[field]) or not 0 <= data[field] <= 100:
            raise ValueError(f"{field} must be a number in 0..100")
    if data["entry_below"] >= data["exit_above"]:
        raise ValueError("entry_below must be below exit_above")


def offline_candidate(context: dict[str, Any]) -> dict[str, Any]:
    """The rule template for the context's regime, as the strategies app's offline fallback does."""
    templates = {
        "ranging": {**VALID, "name": "Offline RSI range"},
        "trending": {
            "name": "Offline EMA trend",
            "indicator": "EMA",
            "period": 50,
            "entry_below": 0,
            "exit_above": 100,
        },
    }
    return templates[context["regime"]]


def ask(**overrides: Any) -> LLMResult:
    """``llm_complete_json`` as strategy generation calls it; keywords replace the defaults."""
    arguments: dict[str, Any] = {
        "purpose": "strategy_generation",
        "template": "strategy_candidate",
        "template_version": "1",
        "system": SYSTEM,
        "context": CONTEXT,
        "instructions": INSTRUCTIONS,
        "schema": SCHEMA,
        "validate": validate_candidate,
    }
    return services.llm_complete_json(**(arguments | overrides))
