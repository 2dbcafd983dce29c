"""The delay test: the same signals filled one bar later, and whether the Sharpe ratio survives it.

A strategy whose edge lives in the exact bar of its fills (a fill a live system cannot get: latency,
a missed open, a data feed a bar late) collapses when every order fills at the open after the one the
backtest used. :data:`FRAGILE_RULE` states the verdict.

**Without re-running the backtester.** Delaying every signal by a bar delays every fill by a bar: the
simulator's trade chain (an entry is the first entry signal at or after the previous exit) is the same
chain shifted, except at the end of the data, where an entry whose fill would fall past the last bar
is dropped and an exit whose fill would is replaced by the close of the last bar. With no stops,
targets or trailing stops (their fills depend on prices, not on the chain), no adds
(``position_size_pct = 1``) and an account that was never wiped out (which ends the report's trades
early), the delayed trades therefore follow from the report's: entry and open-price
exits one bar later, re-priced at those bars' opens. Their equity curve is rebuilt with the
backtester's accounting (one unit of equity per trade, compounded; ``equity = cash + position *
close``), an O(bars) pass instead of a backtest. Otherwise the backtester runs on the shifted signals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..backtest import RiskSettings, backtest_signals
from ..metrics import OPEN_EXITS, BacktestReport, bars_per_year, finite_or_none
from ..rules import Action

_SLICE = 1 << 16
FRAGILE_RULE = (
    "fragile when the Sharpe ratio is positive and one bar of delay leaves less than half of it "
    "(or none); undefined when it is not positive, as there is no edge to lose"
)


@dataclass(frozen=True)
class DelayTest:
    """Annualised Sharpe ratios as the report defines them, before and after one bar of delay."""

    sharpe: float | None
    delayed_sharpe: float | None
    fragile: bool | None
    method: str  # "analytic" or "backtest"; see the module docstring

    def to_dict(self) -> dict[str, object]:
        return {
            "sharpe": finite_or_none(self.sharpe),
            "delayed_sharpe": finite_or_none(self.delayed_sharpe),
            "fragile": self.fragile,
            "rule": FRAGILE_RULE,
            "method": self.method,
        }


def delay_test(
    frame: pd.DataFrame, codes: NDArray[np.integer], risk: RiskSettings, report: BacktestReport
) -> DelayTest:
    """The delay test of the backtest ``report`` of ``codes`` on ``frame`` with ``risk``."""
    # A wiped-out account records no trades after its ruin, which one bar later might not happen.
    if _shifts_cleanly(risk) and report.final_equity > 0.0:
        delayed, method = _delayed_sharpe(frame, report, risk), "analytic"
    else:
        shifted = np.concatenate(([Action.NONE], codes[:-1])).astype(codes.dtype)
        again = backtest_signals(
            frame,
            shifted,
            risk,
            initial_capital=report.initial_capital,
            commission=report.commission,
            slippage=report.slippage,
            timeframe=report.timeframe,
        )
        delayed, method = again.sharpe_ratio, "backtest"
    return DelayTest(report.sharpe_ratio, delayed, is_fragile(report.sharpe_ratio, delayed), method)


def is_fragile(sharpe: float | None, delayed_sharpe: float | None) -> bool | None:
    """:data:`FRAGILE_RULE`."""
    if sharpe is None or sharpe <= 0.0:
        return None
    return delayed_sharpe is None or delayed_sharpe < 0.5 * sharpe


def _shifts_cleanly(risk: RiskSettings) -> bool:
    stops = (risk.stop_loss_pct, risk.take_profit_pct, risk.trailing_stop_pct)
    return all(v is None for v in stops) and risk.position_size_pct == 1.0


def _delayed_sharpe(frame: pd.DataFrame, report: BacktestReport, risk: RiskSettings) -> float | None:
    """The report-style Sharpe ratio of the trades one bar later (see the module docstring)."""
    opens = frame["open"].to_numpy(dtype=np.float64)
    close = frame["close"].to_numpy(dtype=np.float64)
    bars = len(close)
    trades = report.trades
    keep = trades.entry_bar + 1 < bars
    side = trades.side[keep].astype(np.float64)
    entry = trades.entry_bar[keep] + 1
    exit_bar = trades.exit_bar[keep] + 1
    at_open = np.isin(trades.exit_reason[keep], OPEN_EXITS) & (exit_bar < bars)
    exit_bar = np.where(at_open, exit_bar, bars - 1)
    raw_exit = np.where(at_open, opens[np.minimum(exit_bar, bars - 1)], close[-1])
    commission, slippage = report.commission, report.slippage
    fill_in = opens[entry] * (1.0 + side * slippage)
    fill_out = raw_exit * (1.0 - side * slippage)
    quantity = risk.position_size_pct / (fill_in * (1.0 + commission))
    cash = 1.0 - side * quantity * fill_in - commission * quantity * fill_in
    growth = cash + side * quantity * fill_out - commission * quantity * fill_out
    scale = report.initial_capital * np.concatenate(([1.0], np.cumprod(growth)))[: len(growth)]
    # As in the backtester, nothing trades after a trade that leaves no equity.
    count = len(scale) if (scale > 0).all() else int(np.argmax(scale <= 0))
    entry, exit_bar = entry[:count], exit_bar[:count]
    # Cash and position after each fill, in time order: state 0 before any fill, then entry k at
    # 2k + 1 and exit k at 2k + 2.
    cash_after = np.empty(2 * count + 1)
    held = np.zeros(2 * count + 1)
    cash_after[0] = report.initial_capital
    cash_after[1::2], cash_after[2::2] = (scale * cash)[:count], (scale * growth)[:count]
    held[1::2] = (scale * side * quantity)[:count]
    fill_bar = np.empty(2 * count, dtype=np.int64)
    fill_bar[0::2], fill_bar[1::2] = entry, exit_bar
    sharpe = _curve_sharpe(close, fill_bar, cash_after, held)
    return None if sharpe is None else sharpe * math.sqrt(bars_per_year(report.timeframe))


def _curve_sharpe(
    close: NDArray[np.float64],
    fill_bar: NDArray[np.int64],
    cash_after: NDArray[np.float64],
    held: NDArray[np.float64],
) -> float | None:
    """The per-bar Sharpe ratio (as :mod:`..metrics` computes it) of the equity ``cash_after[s] +
    held[s] * close[t]`` at each bar ``t``, ``s`` being the state after the fills up to ``t`` (state
    ``s >= 1`` starts at ``fill_bar[s - 1]``).

    Streamed a slice of bars at a time through small buffers, with the slices' means and sums of
    squared deviations merged exactly (Chan, Golub & LeVeque 1979): a million-bar curve and its
    returns are never materialised, which would cost more than everything else here."""
    bars = len(close)
    if bars < 3:
        return None
    run_start = np.concatenate(([0], fill_bar))
    equity = np.empty(min(bars, _SLICE) + 1)  # equity[0]: the previous slice's last equity
    returns = np.empty(min(bars, _SLICE))
    count, mean, squares = 0, 0.0, 0.0
    for start in range(0, bars, _SLICE):
        stop = min(start + _SLICE, bars)
        # The states whose runs meet [start, stop); "right" makes the later of two fills on one bar
        # (an entry and its exit on the last bar) the one in force, and the earlier's run empty.
        first, last = np.searchsorted(run_start, (start, stop - 1), side="right") - 1
        edges = np.append(np.maximum(run_start[first : last + 1], start), stop)
        lengths = np.diff(edges)
        curve = equity[1 : stop - start + 1]
        np.multiply(np.repeat(held[first : last + 1], lengths), close[start:stop], out=curve)
        curve += np.repeat(cash_after[first : last + 1], lengths)
        # The first slice has no previous equity, so one return fewer.
        window = equity[: stop - start + 1] if start else curve
        r = returns[: len(window) - 1]
        np.subtract(window[1:], window[:-1], out=r)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(r, window[:-1], out=r)
        slice_mean = float(r.mean())
        if not math.isfinite(slice_mean):
            # As metrics.bar_returns: returns past a wiped-out account count as flat.
            r[~np.isfinite(r)] = 0.0
            slice_mean = float(r.mean())
        r -= slice_mean
        slice_squares = float(np.einsum("i,i->", r, r))
        total = count + len(r)
        delta = slice_mean - mean
        mean += delta * len(r) / total
        squares += slice_squares + delta * delta * count * len(r) / total
        count = total
        equity[0] = curve[-1]
    if squares <= 0.0:
        return None
    return mean / math.sqrt(squares / (count - 1))
