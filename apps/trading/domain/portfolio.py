"""Portfolio figures from cash and marked positions: equity, exposure, PnL today and drawdown."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .ledger import ZERO, PositionState, money

RATIO_PLACES = Decimal("0.000001")


@dataclass(frozen=True)
class MarkedPosition:
    """A position with the price it is valued at (None: no price known, valued at cost)."""

    symbol: str
    state: PositionState
    mark: Decimal | None

    @property
    def value(self) -> Decimal:
        return self.state.cost_basis if self.mark is None else self.state.market_value(self.mark)

    @property
    def unrealised(self) -> Decimal:
        return self.value - self.state.cost_basis


@dataclass(frozen=True)
class PortfolioFigures:
    """An account's value at one moment. Ratios are fractions (0.05 = 5%)."""

    cash: Decimal
    positions_value: Decimal
    equity: Decimal
    unrealised_pnl: Decimal
    realised_pnl: Decimal
    total_pnl: Decimal
    daily_pnl: Decimal
    exposure: Decimal
    drawdown: Decimal
    peak_equity: Decimal


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    """``numerator / denominator`` to six places; 0 when the denominator is not positive."""
    return (numerator / denominator).quantize(RATIO_PLACES) if denominator > 0 else ZERO


def portfolio_figures(
    *,
    cash: Decimal,
    positions: list[MarkedPosition],
    starting_cash: Decimal,
    peak_equity: Decimal,
    day_start_equity: Decimal,
    realised_pnl: Decimal,
) -> PortfolioFigures:
    """Equity is cash plus the positions at their marks; drawdown is measured from the higher of the
    recorded peak and the equity now."""
    positions_value = money(sum((p.value for p in positions), ZERO))
    equity = cash + positions_value
    peak = max(peak_equity, equity)
    return PortfolioFigures(
        cash=cash,
        positions_value=positions_value,
        equity=equity,
        unrealised_pnl=sum((p.unrealised for p in positions), ZERO),
        realised_pnl=realised_pnl,
        total_pnl=equity - starting_cash,
        daily_pnl=equity - day_start_equity,
        exposure=ratio(positions_value, equity),
        drawdown=ratio(peak - equity, peak),
        peak_equity=peak,
    )
