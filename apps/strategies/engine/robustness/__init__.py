"""Research honesty: deflate a backtest's winner for the search that found it, then stress it.

Pure numpy/scipy over the engine's reports, like the rest of :mod:`apps.strategies.engine`. Each
module's docstring states its statistic, cites its paper and says what is exact and what is not:
``sharpe`` (PSR, DSR, expected maximum Sharpe, MinTRL), ``overfitting`` (PBO by CSCV), ``monte_carlo``
and ``block_bootstrap`` (trade reshuffle, stationary block bootstrap), ``cost_stress`` (break-even
costs), ``delay`` (one bar later), ``trials`` (every trial's returns), ``walk_forward`` (stitched
out-of-sample curve), ``histogram`` (a distribution kept in a few numbers) and ``report`` (the two
blocks a report carries).
"""

from .block_bootstrap import BootstrapError, default_mean_block_length, stationary_bootstrap_indices
from .cost_stress import BreakEven, BreakEvenCosts, break_even_costs
from .delay import FRAGILE_RULE, DelayTest, delay_test
from .histogram import Histogram
from .monte_carlo import Fan, MonteCarlo, Percentiles, bootstrap_returns, reshuffle_trades, trade_returns
from .overfitting import (
    BlockSums,
    Overfitting,
    OverfittingError,
    block_sums,
    overfitting_from_blocks,
    probability_of_overfitting,
)
from .report import (
    OptimisationBlock,
    RobustnessBlock,
    SharpeTests,
    optimisation_block,
    robustness_block,
    sharpe_tests,
)
from .sharpe import (
    ReturnMoments,
    deflated_sharpe,
    equity_moments,
    expected_max_sharpe,
    min_track_record_length,
    probabilistic_sharpe,
    return_moments,
)
from .trials import TrialReturns, TrialStatistics, trial_returns, trial_statistics, window_statistics
from .walk_forward import WalkForward, stitched_out_of_sample

__all__ = [
    "FRAGILE_RULE",
    "BlockSums",
    "BootstrapError",
    "BreakEven",
    "BreakEvenCosts",
    "DelayTest",
    "Fan",
    "Histogram",
    "MonteCarlo",
    "OptimisationBlock",
    "Overfitting",
    "OverfittingError",
    "Percentiles",
    "ReturnMoments",
    "RobustnessBlock",
    "SharpeTests",
    "TrialReturns",
    "TrialStatistics",
    "WalkForward",
    "block_sums",
    "bootstrap_returns",
    "break_even_costs",
    "default_mean_block_length",
    "deflated_sharpe",
    "delay_test",
    "equity_moments",
    "expected_max_sharpe",
    "min_track_record_length",
    "optimisation_block",
    "overfitting_from_blocks",
    "probabilistic_sharpe",
    "probability_of_overfitting",
    "reshuffle_trades",
    "return_moments",
    "robustness_block",
    "sharpe_tests",
    "stationary_bootstrap_indices",
    "stitched_out_of_sample",
    "trade_returns",
    "trial_returns",
    "trial_statistics",
    "window_statistics",
]
