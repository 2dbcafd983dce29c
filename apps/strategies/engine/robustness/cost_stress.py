"""Break-even costs: the commission and slippage that bring a backtest down to zero or to buy-and-hold.

The targets are a total return of zero and the report's buy-and-hold return (same span, no fees).

Each is found with the other cost held at the report's value, by root-finding (Brent's method) over
``[0, 0.5]``: half of every fill's notional is past any cost a market charges, and nearer 100% a short's
entry fills at almost no price, which makes the backtester's equity overflow. If the return is already
below the target at zero cost, or still above it at 50%, there is no break-even in that range and the
result says so instead of giving a number.

**Analytic solution.** Without adds to a position (``position_size_pct = 1``, or a run where no add
happened), a trade on one unit of equity at size ``f`` with raw entry and exit prices ``o`` and ``X``
(before slippage) ends, by the backtester's cost model (see :mod:`..backtest`), at

    fill_in  = o (1 + side s),   fill_out = X (1 - side s),   rho = fill_out / fill_in
    growth   = 1 + f / (1 + c) * (side (rho - 1) - c (1 + rho))

and the backtest ends at ``initial_capital * prod(growth)`` (trades never overlap and cash is idle
between them; after a trade whose growth is not positive nothing trades). Each growth falls as ``c`` or
``s`` rises (d growth / dc = -f (side (rho - 1) + 1 + rho) / (1 + c)^2 < 0; rho falls with ``s`` for a long
and rises for a short), so the final return is monotone and its root unique. Where the trades exit
does not depend on commission; it does not depend on slippage either unless stops, targets or trailing
stops are on (their levels follow the slipped entry price). So the commission is solved from the trade
list whenever the growths rebuilt at the report's own costs match the report's trades and the account
was never wiped out (its trades stop at the ruin, which lower costs might have avoided), and the
slippage too when no stop is on. Otherwise every evaluation re-runs :func:`..backtest.backtest_signals` (a few
dozen backtests per root) and the method says so. That return need not be monotone (a stop that starts
or stops triggering makes it jump), so the cost found is a point where it crosses or jumps across the
target, not necessarily the only one.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import brentq

from ..backtest import CheckedBars, RiskSettings, backtest_signals
from ..metrics import BacktestReport
from .monte_carlo import trade_returns

COST_CEILING = 0.5
_ANALYTIC_TOLERANCE = 1e-9
_ANALYTIC_XTOL = 1e-12
_BACKTEST_XTOL = 1e-7


@dataclass(frozen=True)
class BreakEven:
    """The cost fraction at which the target is met (0.001 = 0.1% of each fill), or None and why."""

    cost: float | None
    method: str  # "analytic" or "backtest"; see the module docstring
    reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"cost": self.cost, "method": self.method, "reason": self.reason}


@dataclass(frozen=True)
class BreakEvenCosts:
    """Commission and slippage that bring the return to zero and to buy-and-hold's."""

    commission_for_zero_return: BreakEven
    commission_for_buy_and_hold: BreakEven
    slippage_for_zero_return: BreakEven
    slippage_for_buy_and_hold: BreakEven

    def to_dict(self) -> dict[str, object]:
        return {
            "commission_for_zero_return": self.commission_for_zero_return.to_dict(),
            "commission_for_buy_and_hold": self.commission_for_buy_and_hold.to_dict(),
            "slippage_for_zero_return": self.slippage_for_zero_return.to_dict(),
            "slippage_for_buy_and_hold": self.slippage_for_buy_and_hold.to_dict(),
        }


def break_even_costs(
    frame: pd.DataFrame, codes: NDArray[np.integer], risk: RiskSettings, report: BacktestReport
) -> BreakEvenCosts:
    """Break-even costs of the backtest ``report`` of ``codes`` on ``frame`` with ``risk``."""
    if len(report.trades) == 0:
        none = BreakEven(None, "analytic", "no trades: costs change nothing")
        return BreakEvenCosts(none, none, none, none)
    trades = _TradeCosts(frame, report, risk)
    # A wiped-out account records no trades after its ruin, which cheaper fills might have avoided.
    commission_analytic = report.final_equity > 0.0 and trades.matches_report()
    slippage_analytic = commission_analytic and not _has_stops(risk)

    # Checked once, by the first re-run the root finder asks for (an analytic answer needs none).
    bars = functools.cache(lambda: CheckedBars.of(frame))

    def rerun(commission: float, slippage: float) -> float:
        again = backtest_signals(
            bars(),
            codes,
            risk,
            initial_capital=report.initial_capital,
            commission=commission,
            slippage=slippage,
            timeframe=report.timeframe,
        )
        growth = again.final_equity / report.initial_capital
        return math.log(growth) if growth > 0.0 else -math.inf

    by_commission = trades.log_growth if commission_analytic else rerun
    by_slippage = trades.log_growth if slippage_analytic else rerun
    buy_and_hold = 1.0 + report.buy_and_hold_return_pct / 100.0
    c0, s0 = report.commission, report.slippage
    return BreakEvenCosts(
        _solve(lambda c: by_commission(c, s0), 1.0, "zero", "commission", commission_analytic),
        _solve(
            lambda c: by_commission(c, s0), buy_and_hold, "buy-and-hold's", "commission", commission_analytic
        ),
        _solve(lambda s: by_slippage(c0, s), 1.0, "zero", "slippage", slippage_analytic),
        _solve(lambda s: by_slippage(c0, s), buy_and_hold, "buy-and-hold's", "slippage", slippage_analytic),
    )


class _TradeCosts:
    """The report's trades re-costed at any commission and slippage (the formula of the module docstring).

    At full size (``f = 1``) a long's growth is ``rho_raw (1 - s) / (1 + s) * (1 - c) / (1 + c)``, so the
    longs' sum of log growths needs only their count and the sum of their raw log price ratios: the
    root finder's evaluations cost O(shorts), not O(trades)."""

    def __init__(self, frame: pd.DataFrame, report: BacktestReport, risk: RiskSettings) -> None:
        trades = report.trades
        self.report, self.size = report, risk.position_size_pct
        self.side = trades.side.astype(np.float64)
        self.raw_entry = frame["open"].to_numpy(dtype=np.float64)[trades.entry_bar]
        self.raw_exit = trades.exit_price / (1.0 - self.side * report.slippage)
        folded = (self.side > 0.0) if self.size == 1.0 else np.zeros(len(self.side), dtype=bool)
        self.folded_count = int(folded.sum())
        self.folded_log_ratio = float(np.log(self.raw_exit[folded] / self.raw_entry[folded]).sum())
        self.rest = np.flatnonzero(~folded)

    def growth(
        self, commission: float, slippage: float, trades: NDArray[np.intp] | slice = slice(None)
    ) -> NDArray[np.float64]:
        side, entry, exit_ = self.side[trades], self.raw_entry[trades], self.raw_exit[trades]
        ratio = (exit_ * (1.0 - side * slippage)) / (entry * (1.0 + side * slippage))
        return 1.0 + self.size / (1.0 + commission) * (side * (ratio - 1.0) - commission * (1.0 + ratio))

    def log_growth(self, commission: float, slippage: float) -> float:
        """The log of final over initial equity; -inf when a trade leaves no equity (the backtester
        stops trading there, at or below zero)."""
        costs = (
            math.log1p(-slippage) - math.log1p(slippage) + math.log1p(-commission) - math.log1p(commission)
        )
        rest = self.growth(commission, slippage, self.rest)
        if not (rest > 0.0).all():
            return -math.inf
        # A sum of logs, not a product: thousands of trades would under- or overflow.
        return self.folded_log_ratio + self.folded_count * costs + float(np.log(rest).sum())

    def matches_report(self) -> bool:
        """True when the formula rebuilds every trade of the report at its own costs (no adds)."""
        rebuilt = self.growth(self.report.commission, self.report.slippage)
        actual = 1.0 + trade_returns(self.report)
        return bool(np.allclose(rebuilt, actual, rtol=_ANALYTIC_TOLERANCE, atol=_ANALYTIC_TOLERANCE))


def _has_stops(risk: RiskSettings) -> bool:
    return any(v is not None for v in (risk.stop_loss_pct, risk.take_profit_pct, risk.trailing_stop_pct))


def _solve(
    log_growth: Callable[[float], float], target: float, target_name: str, cost_name: str, analytic: bool
) -> BreakEven:
    """The cost in [0, 0.5] at which ``log_growth`` (of final over initial equity) reaches the log of
    ``target`` (> 0: even buy-and-hold keeps some of its value, prices being positive)."""
    method = "analytic" if analytic else "backtest"

    def gap(cost: float) -> float:
        # A ruined run (or one whose numbers broke down: NaN) is far below any target; kept finite,
        # as an overflowing one is, for the root finder.
        value = log_growth(cost)
        return min(value if value > -1e300 else -1e300, 1e300) - math.log(target)

    at_zero = gap(0.0)
    if at_zero < 0.0:
        return BreakEven(None, method, f"the return is below {target_name} even with no {cost_name}")
    if at_zero == 0.0:
        return BreakEven(0.0, method)
    if gap(COST_CEILING) >= 0.0:
        return BreakEven(None, method, f"the return stays above {target_name} for any {cost_name} up to 50%")
    tolerance = _ANALYTIC_XTOL if analytic else _BACKTEST_XTOL
    return BreakEven(float(brentq(gap, 0.0, COST_CEILING, xtol=tolerance)), method)
