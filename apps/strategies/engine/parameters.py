"""Which parameters a strategy reads, and which it defines but never reads.

A strategy reads a parameter when a rule names it, as a value or an indicator argument, anywhere in
its condition (``RSI(rsi_period) < rsi_oversold``, ``close > SMA(slow) * band``, ``not (x > level)``,
``(RSI - floor)[1] > 0``); when a bare indicator takes its settings from it (``RSI`` reads
``rsi_period``, ``MACD`` reads ``macd_fast``, ``macd_slow`` and ``macd_signal``, each when defined);
or when it is a risk setting the backtester and the broker read (:data:`RISK_PARAMETERS`: stops,
target, sizing, holding limit, shorting). Nothing else reads parameters: the document's indicator
list (``["RSI", "SMA(50)"]``) takes numbers only, and a lag (``close[1]``) a whole number.

Any other parameter changes nothing: ``RSI < 30`` beside ``rsi_oversold: 30`` ignores the parameter,
and a search over it runs identical trials.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping

from .backtest import RISK_PARAMETERS
from .rules import Rule, as_rules, parameters_read
from .rules.evaluate import walk
from .rules.syntax import Number


def strategy_parameters_read(rules: Iterable[Rule | Mapping[str, object]]) -> frozenset[str]:
    """Every parameter name the strategy reads: its rules' and the risk settings. Raises RuleError
    for a rule that does not parse."""
    names = set(RISK_PARAMETERS)
    for rule in as_rules(rules):
        names |= parameters_read(rule.node)
    return frozenset(names)


def unused_parameters(rules: Iterable[Rule | Mapping[str, object]], parameters: Iterable[str]) -> list[str]:
    """The names of ``parameters`` that the strategy never reads, sorted."""
    read = strategy_parameters_read(rules)
    return sorted(name for name in parameters if name not in read)


def number_written_at(rules: Iterable[Rule | Mapping[str, object]], value: object) -> int | None:
    """The index of the first rule that writes ``value`` as a number (``RSI < 30`` for an unused
    ``rsi_oversold: 30``, ``RSI(14)`` for an unused ``rsi_period: 14``): where the parameter was most
    likely meant to be read. None when no rule does, or ``value`` is not a number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    for index, rule in enumerate(as_rules(rules)):
        if any(isinstance(node, Number) and node.value == value for node in walk(rule.node)):
            return index
    return None
