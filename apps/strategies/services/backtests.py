"""Backtests: a stored window of a strategy version, run on a worker into metrics, trades, an equity
curve and the buy-and-hold benchmark; the report every other evaluation (the daily update,
generation's holdout, the performance monitor) shares."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings

from apps.core import ownership
from apps.core.jobs import Interrupted, job_claimed, job_complete, job_fail, job_progress
from apps.market import selectors as market_selectors
from apps.strategies import documents, selectors
from apps.strategies.engine import BacktestReport, EquityCurve, RiskSettings, backtest_signals, signals
from apps.strategies.engine.robustness import equity_moments, robustness_block
from apps.strategies.errors import raise_if_problems
from apps.strategies.models import Backtest, JobTrigger, Strategy, StrategyVersion, TrialSource
from apps.strategies.selectors import CandleWindow
from apps.strategies.services.trials import TrialRecord, trials_record
from apps.training import selectors as training
from apps.training.series import ml_series_compute

logger = logging.getLogger(__name__)

Progress = Callable[[float], None]

EQUITY_POINTS = 500
MIN_WINDOW_BARS = 2
DEFAULT_CAPITAL = Decimal("10000")
DEFAULT_COMMISSION = 0.001

# Metrics a strategy's evaluation (the daily update, generation's holdout) records and compares.
EVALUATION_METRICS = (
    "total_return_pct",
    "buy_and_hold_return_pct",
    "sharpe_ratio",
    "max_drawdown_pct",
    "num_trades",
    "win_rate_pct",
    "start",
    "end",
    "bars",
)


def cost_problems(initial_capital: Decimal, commission: float, slippage: float) -> dict[str, list[str]]:
    problems = {}
    if not initial_capital > 0:
        problems["initial_capital"] = [f"must be positive, got {initial_capital}"]
    for name, value in (("commission", commission), ("slippage", slippage)):
        if not 0 <= value < 1:
            problems[name] = [f"must be a fraction from 0 to below 1 (0.001 = 0.1%), got {value}"]
    return problems


def window_problems(strategy: Strategy, start: datetime, end: datetime) -> dict[str, list[str]]:
    if start >= end:
        return {"end_date": [f"must be after start_date ({start:%Y-%m-%d %H:%M}), got {end:%Y-%m-%d %H:%M}"]}
    instrument, timeframe = strategy.instrument, strategy.timeframe
    bars = market_selectors.candle_count(instrument=instrument, timeframe=timeframe, start=start, end=end)
    if bars >= MIN_WINDOW_BARS:
        return {}
    span = market_selectors.candle_span(instrument=instrument, timeframe=timeframe)
    stored = f"{span[0]:%Y-%m-%d %H:%M} .. {span[1]:%Y-%m-%d %H:%M} UTC" if span else "none"
    return {
        "start_date": [
            f"{bars} {timeframe} candle(s) of {instrument.symbol} from {start:%Y-%m-%d %H:%M} to "
            f"{end:%Y-%m-%d %H:%M} UTC; at least {MIN_WINDOW_BARS} are needed. Stored: {stored}"
        ]
    }


def backtest_create(
    *,
    strategy: Strategy,
    start: datetime,
    end: datetime,
    initial_capital: Decimal = DEFAULT_CAPITAL,
    commission: float = DEFAULT_COMMISSION,
    slippage: float = 0.0,
    trigger: str = JobTrigger.API,
    owner: ownership.User | None = None,
) -> Backtest:
    """Validate the window and costs and store a PENDING backtest of the strategy's current version,
    owned by ``owner`` (the requesting user, who must see the strategy; None: the system). Does not
    run it. Raises StrategyInputError (a window without candles, end before start), and
    ``ownership.NotVisible`` or ``TooManyJobs`` (the owner's cap), creating nothing."""
    ownership.see_check(obj=strategy, user=owner, what=f"strategy {strategy.strategy_id}")
    raise_if_problems(
        {
            **cost_problems(initial_capital, commission, slippage),
            **window_problems(strategy, start, end),
        }
    )
    with ownership.job_slot(owner=owner):
        return Backtest.objects.create(
            strategy=strategy,
            version=strategy.current_version,
            trigger=trigger,
            owner=owner,
            start=start,
            end=end,
            initial_capital=initial_capital,
            commission=commission,
            slippage=slippage,
        )


def backtest_run(*, backtest_id: int, progress: Progress | None = None) -> Backtest | None:
    """Claim the backtest, run it on the stored candles and store its metrics, trades, equity curve,
    the buy-and-hold benchmark and its robustness block; record it in the trial ledger.

    Returns None, changing nothing, when the backtest was claimed or finished before (a redelivered
    message). Any failure is stored on the row (FAILED, with the message).
    """
    with job_claimed(model=Backtest, pk=backtest_id) as backtest:
        if backtest is None:
            return None
        step = _progress_steps(backtest, progress)
        try:
            strategy, version = backtest.strategy, backtest.version
            window = selectors.candle_window(
                instrument=strategy.instrument,
                timeframe=strategy.timeframe,
                warmup_bars=documents.warmup_bars(version.rules, [version.parameters]),
                start=backtest.start,
                end=backtest.end,
            )
            step(0.3)
            result = strategy_backtest(
                strategy=strategy,
                version=version,
                window=window,
                initial_capital=float(backtest.initial_capital),
                commission=backtest.commission,
                slippage=backtest.slippage,
            )
            step(0.6)
            fields = report_fields(result.report, window)
            fields["robustness"] = backtest_robustness(backtest=backtest, window=window, result=result)
        except Interrupted:
            raise
        except Exception as error:  # stored for the user; the row must not stay RUNNING
            logger.exception("Backtest %s failed", backtest_id)
            return job_fail(job=backtest, error=f"{type(error).__name__}: {error}")
        return job_complete(job=backtest, **fields)


def _progress_steps(job: Backtest, callback: Progress | None) -> Progress:
    def step(fraction: float) -> None:
        job_progress(job=job, progress=fraction)
        if callback is not None:
            callback(fraction)

    return step


def strategy_report(
    *,
    strategy: Strategy,
    version: StrategyVersion,
    window: CandleWindow,
    initial_capital: float,
    commission: float,
    slippage: float,
) -> BacktestReport:
    """Backtest a version on a window: signals are computed on every bar, warm-up included (so
    indicators are settled on the window's first bar); trades happen inside the window only."""
    return strategy_backtest(
        strategy=strategy,
        version=version,
        window=window,
        initial_capital=initial_capital,
        commission=commission,
        slippage=slippage,
    ).report


@dataclass(frozen=True)
class StrategyBacktest:
    """A report with what produced it: the window's signal codes and risk settings (the robustness
    block re-trades them)."""

    report: BacktestReport
    codes: np.ndarray
    risk: RiskSettings


def strategy_backtest(
    *,
    strategy: Strategy,
    version: StrategyVersion,
    window: CandleWindow,
    initial_capital: float,
    commission: float,
    slippage: float,
) -> StrategyBacktest:
    """:func:`strategy_report` with its window's signal codes and risk settings."""
    external = external_series(strategy=strategy, rules=version.rules, frame=window.frame)
    codes = signals(version.rules, window.frame, version.parameters, external)[window.first :]
    risk = RiskSettings.from_parameters(version.parameters)
    report = backtest_signals(
        window.window,
        codes,
        risk,
        initial_capital=initial_capital,
        commission=commission,
        slippage=slippage,
        timeframe=strategy.timeframe,
    )
    return StrategyBacktest(report, codes, risk)


def backtest_robustness(
    *, backtest: Backtest, window: CandleWindow, result: StrategyBacktest
) -> dict[str, Any]:
    """Record the backtest in its strategy's trial family (once: keyed by the backtest) and return
    its robustness block, deflated by the family's trials including this one."""
    report = result.report
    moments = equity_moments(report.equity_curve.equity)
    family = selectors.strategy_family(strategy=backtest.strategy)
    trials_record(
        family=family,
        source=TrialSource.BACKTEST,
        records=[TrialRecord(f"backtest:{backtest.pk}", backtest.version.parameters, moments)],
        strategy=backtest.strategy,
        owner=backtest.owner,
    )
    totals = selectors.family_totals(family=family)
    block = robustness_block(
        window.window,
        result.codes,
        result.risk,
        report,
        trials=max(totals.trials, 1),
        sharpe_variance=totals.sharpe_variance,
        paths=settings.STRATEGY_MONTE_CARLO_PATHS,
    )
    return block.to_dict()


def external_series(
    *, strategy: Strategy, rules: list[dict[str, Any]], frame: pd.DataFrame
) -> dict[str, np.ndarray] | None:
    """The model series (``ML_PROBA``, ``ML_RETURN``) the rules read, from walk-forward models of the
    training app that never saw the bar they predict, computed now if they are not stored yet (a
    job's work: seconds to minutes); None when the rules read none."""
    if not documents.external_series(rules):
        return None
    return ml_series_compute(instrument=strategy.instrument, timeframe=strategy.timeframe, frame=frame)


def external_series_stored(
    *, strategy: Strategy, rules: list[dict[str, Any]], frame: pd.DataFrame
) -> tuple[bool, dict[str, np.ndarray] | None]:
    """Like :func:`external_series` but only what is stored: ``(ready, series)``, where ``ready`` is
    False while a series the rules read has not been computed by the training side yet."""
    if not documents.external_series(rules):
        return True, None
    stored = training.ml_series_stored(
        instrument=strategy.instrument, timeframe=strategy.timeframe, frame=frame
    )
    return stored is not None, stored


def external_series_prepare(*, strategy_id: int) -> None:
    """Compute and store the model series that the strategy's newest bar reads, so the orchestrator
    (which only reads them) can act on it; nothing when its rules read none."""
    strategy = Strategy.objects.select_related("instrument", "current_version").get(pk=strategy_id)
    version = strategy.current_version
    if version is not None:
        window = selectors.newest_window(strategy=strategy, version=version)
        external_series(strategy=strategy, rules=version.rules, frame=window.frame)


def report_fields(report: BacktestReport, window: CandleWindow) -> dict[str, Any]:
    """A report as Backtest columns: metrics, trades, the equity curve downsampled to EQUITY_POINTS
    and the buy-and-hold benchmark over the same bars."""
    data = report.to_dict(equity_points=EQUITY_POINTS)
    trades, curve = data.pop("trades"), data.pop("equity_curve")
    close = window.window["close"].to_numpy()
    units = np.full(len(close), report.initial_capital / close[0])
    hold = EquityCurve(report.equity_curve.times, units * close, np.zeros(len(close)), units)
    return {
        "bars": report.bars,
        "metrics": data,
        "trades": trades,
        "equity_curve": curve,
        "benchmark": {
            "return_pct": report.buy_and_hold_return_pct,
            "cagr_pct": report.buy_and_hold_cagr_pct,
            "equity_curve": hold.downsample(EQUITY_POINTS).to_dict(),
        },
    }
