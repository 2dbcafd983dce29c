"""Parsing of the market API's list parameters: ``indicators=RSI,MACD(12,26,9),BB(20,2)``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from apps.market.domain.indicators import REGISTRY, Indicator, IndicatorError, get_indicator

_TERM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(([^()]*)\))?\s*$")


@dataclass(frozen=True)
class IndicatorRequest:
    indicator: Indicator
    params: dict[str, float]

    @property
    def label(self) -> str:
        return self.indicator.key(self.params)


def split_terms(text: str) -> list[str]:
    """Split on commas that are not inside parentheses: ``SMA(50),BB(20,2)`` -> two terms."""
    terms, depth, current = [], 0, []
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [term.strip() for term in terms if term.strip()]


def _number(text: str, term: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise IndicatorError(f"{term}: {text.strip()!r} is not a number") from None


def parse_indicator_list(text: str) -> list[IndicatorRequest]:
    """Parse and validate an indicator list; IndicatorError says which term is wrong and why."""
    requests = []
    for term in split_terms(text):
        match = _TERM.match(term)
        if not match:
            raise IndicatorError(
                f"{term!r} is not NAME or NAME(arg, ...); valid names: {', '.join(sorted(REGISTRY))}"
            )
        name, args = match.groups()
        indicator = get_indicator(name)
        values = [_number(arg, term) for arg in args.split(",")] if args and args.strip() else []
        requests.append(IndicatorRequest(indicator, indicator.resolve(values)))
    if not requests:
        raise IndicatorError(f"name at least one indicator; valid: {', '.join(sorted(REGISTRY))}")
    return requests
