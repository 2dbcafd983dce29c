"""The backtester: rules and candles in, a :class:`~.metrics.BacktestReport` out.

Conventions (shared with the paper broker, see ARCHITECTURE.md):

* **Timing.** Rules are evaluated on the close of bar t with data up to t; the resulting market
  order fills at the open of bar t + 1. A signal on the last bar has no next bar and does nothing.
  On any bar the order from the previous close fills first, at the open; stops and targets are then
  checked against that bar, using the levels in force after that fill.
* **Costs.** ``commission`` and ``slippage`` are fractions of each fill's notional. Slippage moves
  every fill against the trader (buys fill at ``price * (1 + slippage)``, sells at
  ``price * (1 - slippage)``), stop, target and final fills included. Commission is paid on the
  slipped notional.
* **Sizing.** Fractional quantities: an entry buys ``equity * position_size_pct /
  (fill_price * (1 + commission))``, so with ``position_size_pct = 1`` the price and the fee use up
  the cash exactly. Only when ``position_size_pct < 1`` does a ``buy`` while long (or ``short`` while
  short) add to the position: the same amount again, capped so that the position's notional at the
  fill price does not exceed the equity (no leverage). Once an add reaches that cap (for a long:
  spends the last of the cash), the position is full and takes no more adds until it is closed.
  Equity for sizing is cash plus the position marked at the fill price.
* **Actions.** Flat: ``buy`` opens a long, ``short`` opens a short (only with ``allow_short``).
  Long: ``sell`` closes; ``buy`` adds. Short: ``cover`` closes; ``short`` adds. Everything else is
  ignored (no implicit reversal; ``short``/``cover`` are ignored entirely without ``allow_short``).
* **Stops** (fractions of the average entry price, which includes slippage): ``stop_loss_pct``,
  ``take_profit_pct`` and ``trailing_stop_pct`` are checked against each bar's low and high from the
  entry bar itself onwards: the entry fills at the entry bar's open, its first price, so all of that
  bar's range happens while the position is open. The trailing level for a bar trails the best price
  reached *before* that bar (the fill price, then earlier highs for a long / lows for a short),
  because the order of high and low inside a bar is unknown. A bar that opens beyond a level fills at
  the open (a gap); otherwise the level's price. If a bar touches both a stop and the target, the stop
  is assumed first; between the stop loss and the trailing stop, the tighter one triggers.
* ``max_holding_bars = N`` closes the position at the open of the N-th bar after the entry bar
  (after N bars held), reason ``max_bars`` (``signal`` if an exit signal fills on that same open).
  A position still open at the end is closed at the last close, reason ``end``. Exit reasons: see
  :data:`~.metrics.EXIT_REASONS`.
* **Accounting identity**, at every bar's close: ``equity = cash + position * close``, where cash is
  the initial capital minus the notional of every buy, plus the notional of every sell, minus every
  fee. Equivalently ``equity = initial_capital + sum(pnl of closed trades) + open pnl``, where a
  trade's pnl is net of both fees and the open pnl is ``side * quantity * (close - entry_price)``
  minus the entry fee (``commission * quantity * entry_price``).

Speed: signals are computed vectorised; the position logic loops over *trades*, not bars. Every
candidate entry's signal and holding-limit exit is found at once with ``searchsorted``; without
stops or adds the trades are then a walk over precomputed indices. With stops, each trade searches
for its stop/target exit with numpy over geometrically growing windows of the bars after its entry:
O(its length) numpy work plus about 5 microseconds of Python per trade. Trades are first simulated
for one unit of equity (where a trade exits does not depend on the account size), then scaled by the
compounded equity at each entry and turned into the equity curve without a per-bar loop.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from apps.market.domain.candles import CandleError, validate_candles

from .metrics import BacktestReport, EquityCurve, bars_per_year, build_report
from .risk import RISK_PARAMETERS, BacktestError, RiskSettings
from .rules import Action, Rule, signals
from .simulation import simulate

__all__ = [
    "RISK_PARAMETERS",
    "BacktestError",
    "CheckedBars",
    "RiskSettings",
    "backtest_equity",
    "backtest_signals",
    "check_frame",
    "run_backtest",
]

REQUIRED_COLUMNS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class CheckedBars:
    """A candle frame :func:`check_frame` accepted, as the simulator reads it: float64 open, high, low
    and close and naive UTC open times. Checked once and sliced for free (views): a search backtests
    hundreds of windows of one frame, and checking the frame again for each was a third of its time."""

    prices: Mapping[str, NDArray[np.float64]]
    times: NDArray[np.datetime64]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> CheckedBars:
        """Check ``frame`` (raising :class:`BacktestError`) and keep what the simulator reads."""
        check_frame(frame)
        prices = {name: frame[name].to_numpy(dtype=np.float64) for name in REQUIRED_COLUMNS}
        return cls(prices, _utc_times(cast(pd.DatetimeIndex, frame.index)))

    def __len__(self) -> int:
        return len(self.times)

    def window(self, part: slice) -> CheckedBars:
        """The bars of ``part`` (a step-1 slice); an empty window is refused as an empty frame is."""
        bars = CheckedBars({name: values[part] for name, values in self.prices.items()}, self.times[part])
        if len(bars) == 0:
            raise BacktestError("the backtest needs a non-empty DataFrame of candles")
        return bars


def run_backtest(
    frame: pd.DataFrame,
    rules: Iterable[Rule | Mapping[str, object]],
    parameters: Mapping[str, object],
    *,
    initial_capital: float = 10000.0,
    commission: float = 0.001,
    slippage: float = 0.0,
    timeframe: str = "1h",
    external: Mapping[str, NDArray[np.floating] | pd.Series] | None = None,
) -> BacktestReport:
    """Backtest ``rules`` on ``frame`` (UTC open-time index, float64 open/high/low/close[/volume]).

    ``parameters`` are the strategy's: rule values such as ``rsi_oversold`` and the risk settings of
    :class:`RiskSettings`. ``external`` supplies series such as ``ML_PROBA``.
    """
    bars = CheckedBars.of(frame)
    _check_costs(initial_capital, commission, slippage, timeframe)
    risk = RiskSettings.from_parameters(parameters)
    codes = signals(rules, frame, parameters, external)
    return _backtest(bars, codes, risk, float(initial_capital), commission, slippage, timeframe)


def backtest_signals(
    frame: pd.DataFrame | CheckedBars,
    codes: NDArray[np.integer],
    risk: RiskSettings,
    *,
    initial_capital: float = 10000.0,
    commission: float = 0.001,
    slippage: float = 0.0,
    timeframe: str = "1h",
) -> BacktestReport:
    """Backtest precomputed :class:`~.rules.Action` codes (one per bar of ``frame``); pass
    :class:`CheckedBars` to backtest many windows of one frame without checking it each time."""
    bars = _checked(frame, codes, initial_capital, commission, slippage, timeframe)
    return _backtest(bars, codes, risk, float(initial_capital), commission, slippage, timeframe)


def backtest_equity(
    bars: CheckedBars,
    codes: NDArray[np.integer],
    risk: RiskSettings,
    *,
    initial_capital: float = 10000.0,
    commission: float = 0.001,
    slippage: float = 0.0,
) -> EquityCurve:
    """The equity curve :func:`backtest_signals` would report, without computing its metrics: what a
    statistic over many trials' returns needs of each."""
    _checked(bars, codes, initial_capital, commission, slippage, "1h")
    return simulate(bars.prices, bars.times, codes, risk, float(initial_capital), commission, slippage)[1]


def _checked(
    frame: pd.DataFrame | CheckedBars,
    codes: NDArray[np.integer],
    initial_capital: float,
    commission: float,
    slippage: float,
    timeframe: str,
) -> CheckedBars:
    bars = frame if isinstance(frame, CheckedBars) else CheckedBars.of(frame)
    _check_costs(initial_capital, commission, slippage, timeframe)
    codes = np.asarray(codes)
    if codes.shape != (len(bars),):
        raise BacktestError(f"got {len(codes)} signals for {len(bars)} bars")
    if len(codes) and not (min(Action) <= codes.min() and codes.max() <= max(Action)):
        raise BacktestError(f"signal codes must be Action values {min(Action)}..{max(Action)}")
    return bars


def _backtest(
    bars: CheckedBars,
    codes: NDArray[np.integer],
    risk: RiskSettings,
    initial_capital: float,
    commission: float,
    slippage: float,
    timeframe: str,
) -> BacktestReport:
    trades, curve = simulate(bars.prices, bars.times, codes, risk, initial_capital, commission, slippage)
    return build_report(
        times=bars.times,
        close=bars.prices["close"],
        curve=curve,
        trades=trades,
        initial_capital=initial_capital,
        timeframe=timeframe,
        commission=commission,
        slippage=slippage,
    )


def check_frame(frame: pd.DataFrame) -> None:
    """Raise :class:`BacktestError` unless ``frame`` is a non-empty, valid candle frame (see
    :func:`apps.market.domain.candles.validate_candles`: UTC open times, finite float64 OHLCV)."""
    if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
        raise BacktestError("the backtest needs a non-empty DataFrame of candles")
    try:
        validate_candles(frame)
    except CandleError as error:
        raise BacktestError(str(error)) from None


def _check_costs(initial_capital: float, commission: float, slippage: float, timeframe: str) -> None:
    if not isinstance(initial_capital, numbers.Real) or not initial_capital > 0:
        raise BacktestError(f"initial_capital must be positive, got {initial_capital!r}")
    for name, value in (("commission", commission), ("slippage", slippage)):
        if not isinstance(value, numbers.Real) or not 0 <= value < 1:
            raise BacktestError(f"{name} must be a fraction from 0 to below 1, got {value!r}")
    try:
        bars_per_year(timeframe)
    except ValueError as error:
        raise BacktestError(str(error)) from None


def _utc_times(index: pd.DatetimeIndex) -> NDArray[np.datetime64]:
    return index.tz_localize(None).to_numpy()
