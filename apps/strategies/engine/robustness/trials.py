"""Every trial's per-bar returns: the matrix CSCV reads, and the spread of Sharpe ratios the DSR uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..backtest import BacktestError, RiskSettings, backtest_signals
from ..metrics import bar_returns
from ..optimize import ChunkTrial, Costs, Window
from ..rules import IndicatorCache, Rule, RuleError, as_rules, signals
from ..rules import validate as validate_condition

DEFAULT_COSTS = Costs()


@dataclass(frozen=True)
class TrialReturns:
    """Column ``j`` holds the per-bar equity returns of trial ``indices[j]``; rejected trials have none."""

    indices: NDArray[np.int64]
    returns: NDArray[np.float64]  # (bars - 1) x trials
    rejected: dict[int, str]  # trial index: why the strategy rejected its parameters

    def column(self, index: int) -> NDArray[np.float64] | None:
        """The returns of trial ``index``, or None if it has none."""
        found = np.flatnonzero(self.indices == index)
        return self.returns[:, found[0]] if len(found) else None


def trial_returns(
    frame: pd.DataFrame,
    rules: Sequence[Rule | Mapping[str, object]],
    base_parameters: Mapping[str, object],
    trials: Sequence[ChunkTrial],
    *,
    window: Window | None = None,
    costs: Costs = DEFAULT_COSTS,
    external: Mapping[str, NDArray[np.floating] | pd.Series] | None = None,
) -> TrialReturns:
    """Backtest each trial (``{"index", "params"}`` as :func:`..optimize.chunk` numbers them) on
    ``window`` (default: every bar) and keep its equity curve's bar returns. Signals are computed on
    the whole frame and sliced, and a combination the strategy rejects is skipped, both as in
    :func:`..optimize.evaluate_chunk`."""
    rules = as_rules(rules)
    window = window or Window(0, len(frame))
    cache = IndicatorCache(frame)
    columns: list[NDArray[np.float64]] = []
    indices: list[int] = []
    rejected: dict[int, str] = {}
    for trial in trials:
        parameters = {**base_parameters, **trial["params"]}
        try:
            for rule in rules:
                validate_condition(rule.condition, parameters)
            risk = RiskSettings.from_parameters(parameters)
        except (RuleError, BacktestError) as error:
            rejected[trial["index"]] = str(error)
            continue
        codes = signals(rules, frame, parameters, external, cache=cache)
        report = backtest_signals(
            frame.iloc[window.slice],
            codes[window.slice],
            risk,
            initial_capital=costs.initial_capital,
            commission=costs.commission,
            slippage=costs.slippage,
            timeframe=costs.timeframe,
        )
        columns.append(bar_returns(report.equity_curve.equity))
        indices.append(trial["index"])
    returns = np.column_stack(columns) if columns else np.zeros((max(len(window) - 1, 0), 0))
    return TrialReturns(np.asarray(indices, dtype=np.int64), returns, rejected)
