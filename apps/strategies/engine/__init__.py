"""The pure strategy engine: the rule language, the backtester, its metrics and the optimiser.

numpy and pandas only: candles (a DataFrame) and plain dicts in, dataclasses out. The modules'
docstrings are the manual: ``rules`` (grammar and evaluation), ``backtest`` (execution
conventions), ``metrics`` (definitions), ``optimize`` (spaces, walk-forward, overfitting) and
``robustness`` (deflated Sharpe ratios, PBO, Monte Carlo and stress tests; it also uses scipy).
"""

from .backtest import RISK_PARAMETERS, BacktestError, RiskSettings, backtest_signals, run_backtest
from .metrics import BacktestReport, EquityCurve, Trades
from .rules import Action, Rule, RuleError, RuleSyntaxError, parse, signals, validate

__all__ = [
    "RISK_PARAMETERS",
    "Action",
    "BacktestError",
    "BacktestReport",
    "EquityCurve",
    "RiskSettings",
    "Rule",
    "RuleError",
    "RuleSyntaxError",
    "Trades",
    "backtest_signals",
    "parse",
    "run_backtest",
    "signals",
    "validate",
]
