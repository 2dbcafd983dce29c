"""Every trial's per-bar returns, or what the robustness statistics keep of them: the return moments
the deflated Sharpe ratio reads and the per-block sums CSCV reads (:class:`TrialStatistics`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..backtest import BacktestError, CheckedBars, RiskSettings, backtest_equity
from ..metrics import bar_returns
from ..optimize import ChunkTrial, Costs, Window, WindowStatistics
from ..rules import IndicatorCache, Rule, RuleError, as_rules, signals
from ..rules import validate as validate_condition
from .overfitting import DEFAULT_PARTITIONS, BlockSums, OverfittingError, block_sums
from .sharpe import ReturnMoments, return_moments

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

    def statistics(self, partitions: int = DEFAULT_PARTITIONS) -> dict[int, TrialStatistics]:
        """Every trial's :func:`trial_statistics`, by trial index."""
        return {
            int(index): trial_statistics(column, partitions)
            for index, column in zip(self.indices, self.returns.T, strict=True)
        }


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
    bars = CheckedBars.of(frame).window(window.slice)
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
        columns.append(_window_returns(bars, codes[window.slice], risk, costs))
        indices.append(trial["index"])
    returns = np.column_stack(columns) if columns else np.zeros((max(len(window) - 1, 0), 0))
    return TrialReturns(np.asarray(indices, dtype=np.int64), returns, rejected)


@dataclass(frozen=True)
class TrialStatistics:
    """What a search's robustness block needs of one trial's returns over the whole window: their
    moments and their CSCV block sums (None, with ``blocks_error``, when the window is too short)."""

    moments: ReturnMoments
    blocks: BlockSums | None
    blocks_error: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (an optimisation chunk stores it with the trial's result)."""
        return {
            "observations": self.moments.observations,
            "sharpe": self.moments.sharpe,
            "skewness": self.moments.skewness,
            "kurtosis": self.moments.kurtosis,
            "blocks": None if self.blocks is None else self.blocks.to_dict(),
            "blocks_error": self.blocks_error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialStatistics:
        moments = ReturnMoments(int(data["observations"]), data["sharpe"], data["skewness"], data["kurtosis"])
        blocks = data.get("blocks")
        return cls(moments, None if blocks is None else BlockSums.from_dict(blocks), data.get("blocks_error"))


def trial_statistics(returns: NDArray[np.float64], partitions: int = DEFAULT_PARTITIONS) -> TrialStatistics:
    """The moments and CSCV block sums of one trial's per-bar ``returns``."""
    try:
        blocks, error = block_sums(returns, partitions), None
    except OverfittingError as failure:
        blocks, error = None, str(failure)
    return TrialStatistics(return_moments(returns), blocks, error)


def window_statistics(
    frame: pd.DataFrame | CheckedBars,
    *,
    window: Window | None = None,
    costs: Costs = DEFAULT_COSTS,
    partitions: int = DEFAULT_PARTITIONS,
) -> WindowStatistics:
    """The ``whole_window`` of :func:`..optimize.evaluate_chunk`: backtest a trial's signals on
    ``window`` (default: every bar) as :func:`trial_returns` does and keep :func:`trial_statistics`
    of its bar returns. Pass the frame's :class:`CheckedBars` where the caller has them."""
    window = window or Window(0, len(frame))
    bars = (frame if isinstance(frame, CheckedBars) else CheckedBars.of(frame)).window(window.slice)

    def statistics(codes: NDArray[np.int8], risk: RiskSettings) -> dict[str, object]:
        return trial_statistics(_window_returns(bars, codes[window.slice], risk, costs), partitions).to_dict()

    return statistics


def _window_returns(
    bars: CheckedBars, codes: NDArray[np.integer], risk: RiskSettings, costs: Costs
) -> NDArray[np.float64]:
    """The bar returns of the equity curve of ``codes`` traded on ``bars``."""
    curve = backtest_equity(
        bars,
        codes,
        risk,
        initial_capital=costs.initial_capital,
        commission=costs.commission,
        slippage=costs.slippage,
    )
    return bar_returns(curve.equity)
