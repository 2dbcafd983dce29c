"""Backtest results: the report, its trades and equity curve, and the performance metrics.

Definitions (``r`` are the per-bar returns of the equity curve, which is marked at every close;
annualised figures use the timeframe's bars per year on a 365-day year, e.g. 8760 for ``1h``):

* ``total_return_pct``: final equity over initial capital, minus 1. ``cagr_pct``: its annual rate over
  ``(bars - 1) / bars_per_year`` years (the curve spans bars - 1 bar intervals).
* ``sharpe_ratio`` ``mean(r) / std(r) * sqrt(bars_per_year)`` (no risk-free rate, ddof=1);
  ``sortino_ratio`` the same over the downside deviation ``sqrt(mean(min(r, 0)**2))``;
  ``volatility_pct`` ``std(r) * sqrt(bars_per_year)``.
* ``max_drawdown_pct``: the deepest fall from a previous equity high, as a positive percentage;
  ``calmar_ratio`` ``cagr_pct / max_drawdown_pct``. ``max_drawdown_duration``: the longest time under a
  previous high, from the bar of the high to the bar that regains it (or the last bar).
* Trades: ``win_rate_pct`` share with pnl > 0; ``profit_factor`` gross profit over gross loss;
  ``expectancy_pct`` the arithmetic mean trade return; ``avg_trade_pct`` the geometric mean trade
  return; ``best``/``worst_trade_pct``. A trade's return is its pnl (after all fees) over its entry
  notional (average entry price times quantity).
* ``exposure_pct``: share of bars with a position open for at least part of the bar.
* ``buy_and_hold_return_pct``: holding the asset from the first close to the last, no fees (the same
  span as the equity curve, so it compares with ``total_return_pct``); ``buy_and_hold_cagr_pct`` its
  annual rate (compares with ``cagr_pct``).

A metric that is undefined (no trades, no losses, flat equity) is None, never NaN or infinity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import timedelta

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from apps.market.domain.candles import parse_timeframe

EXIT_REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "max_bars", "end")
OPEN_EXITS = ("signal", "max_bars")  # market orders filled at a bar's open
SIDES = {1: "long", -1: "short"}

_YEAR = pd.Timedelta(days=365)


def bars_per_year(timeframe: str) -> float:
    """Bars in a 365-day year for a timeframe of the market data (``1m`` ... ``1w``), e.g. 8760 for ``1h``."""
    return _YEAR / parse_timeframe(timeframe).duration


def finite_or_none(value: float | None) -> float | None:
    """A JSON-safe float: None for None, NaN and infinities."""
    return None if value is None or not math.isfinite(value) else float(value)


def iso_times(times: NDArray[np.datetime64]) -> list[str]:
    """UTC ``datetime64`` values as ISO 8601 strings ending in ``Z``."""
    return [f"{t}Z" for t in np.datetime_as_string(times.astype("datetime64[s]"), unit="s")]


@dataclass(frozen=True)
class Trades:
    """Closed trades, oldest first, as columns. Times are the open times of the fill bars."""

    entry_bar: NDArray[np.int64]
    exit_bar: NDArray[np.int64]
    entry_time: NDArray[np.datetime64]
    exit_time: NDArray[np.datetime64]
    side: NDArray[np.int8]  # +1 long, -1 short
    entry_price: NDArray[np.float64]  # average fill price, after slippage
    exit_price: NDArray[np.float64]
    quantity: NDArray[np.float64]
    pnl: NDArray[np.float64]  # after all fees
    return_pct: NDArray[np.float64]
    fees: NDArray[np.float64]
    exit_reason: NDArray[np.object_]  # names (str) from EXIT_REASONS

    def __len__(self) -> int:
        return len(self.pnl)

    def records(self) -> list[dict[str, object]]:
        """One JSON-ready dict per trade."""
        columns = {
            "entry_time": iso_times(self.entry_time),
            "exit_time": iso_times(self.exit_time),
            "side": [SIDES[int(s)] for s in self.side],
            "entry_price": self.entry_price.tolist(),
            "exit_price": self.exit_price.tolist(),
            "quantity": self.quantity.tolist(),
            "pnl": self.pnl.tolist(),
            "return_pct": self.return_pct.tolist(),
            "fees": self.fees.tolist(),
            "exit_reason": self.exit_reason.tolist(),
            "entry_bar": self.entry_bar.tolist(),
            "exit_bar": self.exit_bar.tolist(),
        }
        return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


@dataclass(frozen=True)
class EquityCurve:
    """Account value at every bar's close: ``equity == cash + position * close``.

    ``position`` is the signed quantity held at the close (negative when short); ``cash`` has every
    fill's notional and fee already taken out or paid in.
    """

    times: NDArray[np.datetime64]
    equity: NDArray[np.float64]
    cash: NDArray[np.float64]
    position: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.equity)

    def downsample(self, points: int) -> EquityCurve:
        """At most ``points`` evenly spaced bars, always keeping the first and the last."""
        if points < 2:
            raise ValueError("downsample needs at least 2 points")
        if len(self) <= points:
            return self
        keep = np.unique(np.linspace(0, len(self) - 1, points).round().astype(np.int64))
        return EquityCurve(self.times[keep], self.equity[keep], self.cash[keep], self.position[keep])

    def to_dict(self) -> dict[str, list[str] | list[float | None]]:
        return {"times": iso_times(self.times), "equity": [finite_or_none(v) for v in self.equity.tolist()]}


@dataclass(frozen=True)
class Duration:
    bars: int
    span: timedelta

    def to_dict(self) -> dict[str, float]:
        return {"bars": self.bars, "seconds": self.span.total_seconds()}


@dataclass(frozen=True)
class BacktestReport:
    """Everything a backtest measured; see the module docstring for each definition."""

    start: np.datetime64
    end: np.datetime64
    bars: int
    timeframe: str
    initial_capital: float
    commission: float
    slippage: float
    total_return_pct: float
    cagr_pct: float | None
    sharpe_ratio: float | None
    sortino_ratio: float | None
    calmar_ratio: float | None
    max_drawdown_pct: float
    max_drawdown_duration: Duration
    volatility_pct: float | None
    win_rate_pct: float | None
    profit_factor: float | None
    expectancy_pct: float | None
    avg_trade_pct: float | None
    best_trade_pct: float | None
    worst_trade_pct: float | None
    num_trades: int
    exposure_pct: float
    fees_paid: float
    final_equity: float
    buy_and_hold_return_pct: float
    buy_and_hold_cagr_pct: float | None
    trades: Trades
    equity_curve: EquityCurve

    def metrics(self) -> dict[str, object]:
        """The scalar metrics, JSON-ready (the optimiser's trial result)."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("trades", "equity_curve"):
                continue
            if isinstance(value, Duration):
                out[f.name] = value.to_dict()
            elif isinstance(value, np.datetime64):
                out[f.name] = iso_times(np.array([value]))[0]
            elif isinstance(value, float):
                out[f.name] = finite_or_none(value)
            else:
                out[f.name] = value
        return out

    def to_dict(self, equity_points: int | None = None) -> dict[str, object]:
        """Metrics, trades and equity curve as JSON-ready data; ``equity_points`` downsamples the curve."""
        curve = self.equity_curve if equity_points is None else self.equity_curve.downsample(equity_points)
        return {**self.metrics(), "trades": self.trades.records(), "equity_curve": curve.to_dict()}


def build_report(
    *,
    times: NDArray[np.datetime64],
    close: NDArray[np.float64],
    curve: EquityCurve,
    trades: Trades,
    initial_capital: float,
    timeframe: str,
    commission: float,
    slippage: float,
) -> BacktestReport:
    """Compute every metric of a finished backtest."""
    per_year = bars_per_year(timeframe)
    equity = curve.equity
    years = (len(equity) - 1) / per_year
    returns = bar_returns(equity)
    total = equity[-1] / initial_capital - 1.0
    cagr = _annual_rate(total, years)
    max_drawdown = _max_drawdown(equity)
    hold = close[-1] / close[0] - 1.0
    return BacktestReport(
        start=times[0],
        end=times[-1],
        bars=len(equity),
        timeframe=timeframe,
        initial_capital=float(initial_capital),
        commission=float(commission),
        slippage=float(slippage),
        total_return_pct=100.0 * total,
        cagr_pct=_pct(cagr),
        sharpe_ratio=_sharpe(returns, per_year),
        sortino_ratio=_sortino(returns, per_year),
        calmar_ratio=None if cagr is None or max_drawdown == 0 else 100.0 * cagr / (100.0 * max_drawdown),
        max_drawdown_pct=100.0 * max_drawdown,
        max_drawdown_duration=_drawdown_duration(equity, times),
        volatility_pct=None
        if len(returns) < 2
        else 100.0 * float(np.std(returns, ddof=1)) * math.sqrt(per_year),
        **_trade_metrics(trades),
        num_trades=len(trades),
        exposure_pct=100.0 * _exposed_bars(trades) / len(equity),
        fees_paid=float(trades.fees.sum()),
        final_equity=float(equity[-1]),
        buy_and_hold_return_pct=100.0 * hold,
        buy_and_hold_cagr_pct=_pct(_annual_rate(hold, years)),
        trades=trades,
        equity_curve=curve,
    )


def _pct(rate: float | None) -> float | None:
    return None if rate is None else 100.0 * rate


def bar_returns(equity: NDArray[np.float64]) -> NDArray[np.float64]:
    """The per-bar returns ``r`` of an equity curve, the series every ratio above is computed from."""
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.diff(equity) / equity[:-1]
    # After a short squeeze wipes the account out, returns stop meaning anything: count them as flat.
    returns[~np.isfinite(returns)] = 0.0
    return returns


def _annual_rate(total_return: float, years: float) -> float | None:
    if years <= 0:
        return None
    if total_return <= -1.0:
        return -1.0
    rate: float = (1.0 + total_return) ** (1.0 / years) - 1.0  # a real power: the base is positive
    return rate


def _sharpe(returns: NDArray[np.float64], per_year: float) -> float | None:
    if len(returns) < 2:
        return None
    deviation = float(np.std(returns, ddof=1))
    return None if deviation == 0 else float(np.mean(returns)) / deviation * math.sqrt(per_year)


def _sortino(returns: NDArray[np.float64], per_year: float) -> float | None:
    if len(returns) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    return None if downside == 0 else float(np.mean(returns)) / downside * math.sqrt(per_year)


def _max_drawdown(equity: NDArray[np.float64]) -> float:
    # The curve starts at the initial capital: no position is open at the first close.
    return float(np.max(1.0 - equity / np.maximum.accumulate(equity)))


def _drawdown_duration(equity: NDArray[np.float64], times: NDArray[np.datetime64]) -> Duration:
    under = equity < np.maximum.accumulate(equity)
    if not under.any():
        return Duration(0, timedelta(0))
    edges = np.diff(np.concatenate(([False], under, [False])).astype(np.int8))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # stop: first bar back up
    peaks = starts - 1
    recoveries = np.minimum(stops, len(equity) - 1)
    longest = int(np.argmax(recoveries - peaks))
    span = (times[recoveries[longest]] - times[peaks[longest]]).astype("timedelta64[us]").item()
    return Duration(int(recoveries[longest] - peaks[longest]), span)


def _trade_metrics(trades: Trades) -> dict[str, float | None]:
    if len(trades) == 0:
        keys = (
            "win_rate_pct",
            "profit_factor",
            "expectancy_pct",
            "avg_trade_pct",
            "best_trade_pct",
            "worst_trade_pct",
        )
        return dict.fromkeys(keys)
    pnl, returns = trades.pnl, trades.return_pct
    gross_loss = -float(pnl[pnl < 0].sum())
    growth = 1.0 + returns / 100.0
    geometric = None if (growth <= 0).any() else 100.0 * (math.exp(float(np.mean(np.log(growth)))) - 1.0)
    return {
        "win_rate_pct": 100.0 * float(np.mean(pnl > 0)),
        "profit_factor": None if gross_loss == 0 else float(pnl[pnl > 0].sum()) / gross_loss,
        "expectancy_pct": float(np.mean(returns)),
        "avg_trade_pct": geometric,
        "best_trade_pct": float(returns.max()),
        "worst_trade_pct": float(returns.min()),
    }


def _exposed_bars(trades: Trades) -> int:
    at_open = np.isin(trades.exit_reason, OPEN_EXITS)
    return int(np.sum(trades.exit_bar - trades.entry_bar + ~at_open))
