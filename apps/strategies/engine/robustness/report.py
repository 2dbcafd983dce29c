"""The ``robustness`` block of a backtest report and the robustness block of an optimisation.

:func:`robustness_block` judges one backtest: the PSR of its per-bar Sharpe ratio, the DSR given how
many trials the search behind it ran and how much their Sharpe ratios varied (the ledger that counts
trials lives outside the engine: pass its totals), the bars needed for 95% confidence that the Sharpe
ratio is above 0, the Monte Carlo percentiles, the break-even costs and the delay test.

:func:`optimisation_block` judges a search: the PBO of its trials by CSCV, the deflated Sharpe ratio
of the trial :func:`..optimize.summarise` would adopt, and the stitched walk-forward curve with its
efficiency.

Every ``to_dict()`` is JSON-ready: None where a figure is undefined, never NaN or infinity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..backtest import CheckedBars, RiskSettings
from ..metrics import BacktestReport, bar_returns, finite_or_none
from ..optimize import Costs, Fold, Summary
from ..rules import Rule
from .block_bootstrap import BootstrapError
from .cost_stress import BreakEvenCosts, break_even_costs
from .delay import DelayTest, delay_test
from .monte_carlo import (
    DEFAULT_PATHS,
    DEFAULT_RUIN_DRAWDOWN,
    MonteCarlo,
    bootstrap_returns,
    reshuffle_trades,
    trade_returns,
)
from .overfitting import DEFAULT_PARTITIONS, Overfitting, OverfittingError, overfitting_from_blocks
from .sharpe import (
    ReturnMoments,
    deflated_sharpe,
    equity_moments,
    expected_max_sharpe,
    min_track_record_length,
    probabilistic_sharpe,
)
from .trials import DEFAULT_COSTS, TrialStatistics
from .walk_forward import WalkForward, stitched_out_of_sample

CONFIDENCE = 0.95


@dataclass(frozen=True)
class SharpeTests:
    """The per-bar Sharpe ratio of a return series and how far to trust it."""

    observations: int
    sharpe: float | None  # per bar; times sqrt(bars per year) is the report's annualised figure
    skewness: float | None
    kurtosis: float | None
    psr: float | None  # probability that the true Sharpe ratio is above 0
    trials: int
    sharpe_variance: float | None  # of the trials' per-bar Sharpe ratios
    expected_max_sharpe: float | None  # per bar: what the best of ``trials`` reaches by luck
    deflated_sharpe: float | None
    min_track_record_bars: float | None  # for 95% confidence that the Sharpe ratio is above 0

    def to_dict(self) -> dict[str, object]:
        return {
            "observations": self.observations,
            "sharpe_per_bar": finite_or_none(self.sharpe),
            "skewness": finite_or_none(self.skewness),
            "kurtosis": finite_or_none(self.kurtosis),
            "psr": finite_or_none(self.psr),
            "trials": self.trials,
            "sharpe_variance": finite_or_none(self.sharpe_variance),
            "expected_max_sharpe": finite_or_none(self.expected_max_sharpe),
            "deflated_sharpe": finite_or_none(self.deflated_sharpe),
            "min_track_record_bars": finite_or_none(self.min_track_record_bars),
        }


@dataclass(frozen=True)
class RobustnessBlock:
    sharpe: SharpeTests
    trade_reshuffle: MonteCarlo | None  # None without trades or when Monte Carlo is off
    block_bootstrap: MonteCarlo | None
    break_even: BreakEvenCosts
    delay: DelayTest

    def to_dict(self) -> dict[str, object]:
        return {
            **self.sharpe.to_dict(),
            "monte_carlo": {
                "trade_reshuffle": None if self.trade_reshuffle is None else self.trade_reshuffle.to_dict(),
                "block_bootstrap": None if self.block_bootstrap is None else self.block_bootstrap.to_dict(),
            },
            "break_even": self.break_even.to_dict(),
            "delay": self.delay.to_dict(),
        }


@dataclass(frozen=True)
class OptimisationBlock:
    best_index: int | None
    best: SharpeTests | None  # the adopted trial's Sharpe tests, deflated by every trial
    overfitting: Overfitting | None
    overfitting_error: str | None  # why there is no PBO
    walk_forward: WalkForward | None
    walk_forward_efficiency: float | None

    def to_dict(self, equity_points: int | None = None) -> dict[str, object]:
        return {
            "best_index": self.best_index,
            "best": None if self.best is None else self.best.to_dict(),
            "pbo": None if self.overfitting is None else self.overfitting.to_dict(),
            "pbo_error": self.overfitting_error,
            "walk_forward": None if self.walk_forward is None else self.walk_forward.to_dict(equity_points),
            "walk_forward_efficiency": finite_or_none(self.walk_forward_efficiency),
        }


def sharpe_tests(
    moments: ReturnMoments, *, trials: int = 1, sharpe_variance: float | None = None
) -> SharpeTests:
    """PSR, DSR and MinTRL of a return series' ``moments``; with ``trials > 1`` the DSR needs
    ``sharpe_variance``."""
    sharpe, observations = moments.sharpe, moments.observations
    deflatable = trials == 1 or sharpe_variance is not None
    benchmark = expected_max_sharpe(trials, sharpe_variance or 0.0) if deflatable else None
    psr = deflated = min_bars = None
    skewness, kurtosis = moments.skewness, moments.kurtosis
    if sharpe is not None and skewness is not None and kurtosis is not None:  # (None together: flat)
        psr = probabilistic_sharpe(sharpe, observations, skewness=skewness, kurtosis=kurtosis)
        if deflatable:
            deflated = deflated_sharpe(
                sharpe,
                observations,
                trials=trials,
                sharpe_variance=sharpe_variance or 0.0,
                skewness=skewness,
                kurtosis=kurtosis,
            )
        min_bars = min_track_record_length(
            sharpe, confidence=CONFIDENCE, skewness=skewness, kurtosis=kurtosis
        )
    return SharpeTests(
        observations=observations,
        sharpe=sharpe,
        skewness=moments.skewness,
        kurtosis=moments.kurtosis,
        psr=psr,
        trials=trials,
        sharpe_variance=sharpe_variance,
        expected_max_sharpe=benchmark,
        deflated_sharpe=deflated,
        min_track_record_bars=min_bars,
    )


def robustness_block(
    frame: pd.DataFrame,
    codes: NDArray[np.integer],
    risk: RiskSettings,
    report: BacktestReport,
    *,
    trials: int = 1,
    sharpe_variance: float | None = None,
    paths: int = DEFAULT_PATHS,
    mean_block_length: float | None = None,
    ruin_drawdown: float = DEFAULT_RUIN_DRAWDOWN,
    seed: int = 0,
) -> RobustnessBlock:
    """The robustness block of ``report``, the backtest of ``codes`` on ``frame`` with ``risk``.

    ``trials`` and ``sharpe_variance`` (of the trials' per-bar Sharpe ratios; annualised variance
    divided by bars per year) come from the trial ledger. ``paths = 0`` skips the Monte Carlo."""
    if isinstance(paths, bool) or not isinstance(paths, int) or paths < 0:
        raise BootstrapError(f"paths must be a whole number >= 0, got {paths!r}")
    equity = report.equity_curve.equity
    reshuffled = bootstrapped = None
    if paths and len(report.trades):
        reshuffled = reshuffle_trades(
            trade_returns(report), paths=paths, seed=seed, ruin_drawdown=ruin_drawdown
        )
    if paths and len(equity) > 1:
        bootstrapped = bootstrap_returns(
            bar_returns(equity),
            paths=paths,
            mean_block_length=mean_block_length,
            seed=seed,
            ruin_drawdown=ruin_drawdown,
        )
    return RobustnessBlock(
        sharpe=sharpe_tests(equity_moments(equity), trials=trials, sharpe_variance=sharpe_variance),
        trade_reshuffle=reshuffled,
        block_bootstrap=bootstrapped,
        break_even=break_even_costs(frame, codes, risk, report),
        delay=delay_test(frame, codes, risk, report),
    )


def optimisation_block(
    frame: pd.DataFrame,
    rules: Sequence[Rule | Mapping[str, object]],
    base_parameters: Mapping[str, object],
    folds: Sequence[Fold],
    summary: Summary,
    statistics: Mapping[int, TrialStatistics],
    *,
    costs: Costs = DEFAULT_COSTS,
    external: Mapping[str, NDArray[np.floating] | pd.Series] | None = None,
    partitions: int = DEFAULT_PARTITIONS,
    trials: int | None = None,
    sharpe_variance: float | None = None,
    bars: CheckedBars | None = None,
) -> OptimisationBlock:
    """The robustness of the search ``summary`` came from, over its trials' whole-window
    ``statistics`` (by trial index; :func:`.trials.trial_statistics` with ``partitions``).

    ``trials`` and ``sharpe_variance`` default to this search's: its successful trials and the variance
    of their per-bar Sharpe ratios (a trial that never trades counts as 0); pass the ledger's totals to
    deflate by every trial ever run on this strategy and data. ``bars``: ``frame`` checked, where the
    caller keeps it."""
    ordered = [statistics[index] for index in sorted(statistics)]
    sharpes = [item.moments.sharpe for item in ordered]
    if sharpe_variance is None and len(sharpes) > 1:
        sharpe_variance = float(np.var([s or 0.0 for s in sharpes], ddof=1))
    best = None if summary.best_index is None else statistics.get(summary.best_index)
    unsplit = next((item.blocks_error for item in ordered if item.blocks is None), None)
    overfitting, error = None, unsplit
    if unsplit is None:
        try:
            overfitting = overfitting_from_blocks(
                [item.blocks for item in ordered if item.blocks], partitions
            )
        except OverfittingError as failure:
            error = str(failure)
    return OptimisationBlock(
        best_index=summary.best_index,
        best=None
        if best is None
        else sharpe_tests(
            best.moments, trials=trials or max(len(sharpes), 1), sharpe_variance=sharpe_variance
        ),
        overfitting=overfitting,
        overfitting_error=error,
        walk_forward=stitched_out_of_sample(
            frame, rules, base_parameters, folds, summary, costs=costs, external=external, bars=bars
        ),
        walk_forward_efficiency=summary.walk_forward_efficiency,
    )
