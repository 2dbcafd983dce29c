"""Portfolio figures: equity, PnL today, exposure and drawdown from cash and marked positions."""

from __future__ import annotations

from decimal import Decimal

from apps.trading.domain.ledger import PositionState
from apps.trading.domain.portfolio import MarkedPosition, portfolio_figures

D = Decimal
START = D(10000)


def figures(mark: Decimal | None, *, peak: Decimal = START, day_start: Decimal = START):
    held = MarkedPosition(
        "BTCUSDT", PositionState(quantity=D(2), cost_basis=D(200), realised_pnl=D(-1)), mark
    )
    return portfolio_figures(
        cash=D(9799),
        positions=[held],
        starting_cash=D(10000),
        peak_equity=peak,
        day_start_equity=day_start,
        realised_pnl=D(-1),
    )


def test_equity_is_cash_plus_positions_at_their_marks_and_pnl_adds_up():
    result = figures(D(150))

    assert (result.positions_value, result.equity, result.unrealised_pnl) == (D(300), D(10099), D(100))
    assert result.total_pnl == result.realised_pnl + result.unrealised_pnl == D(99)
    assert result.exposure == (D(300) / D(10099)).quantize(D("0.000001"))


def test_drawdown_is_measured_from_the_higher_of_the_recorded_peak_and_equity_now():
    assert figures(D(150), peak=D(12000)).drawdown == (D(1901) / D(12000)).quantize(D("0.000001"))
    rising = figures(D(150), peak=D(10000))
    assert (rising.drawdown, rising.peak_equity) == (D(0), D(10099))


def test_pnl_today_is_measured_from_the_days_starting_equity():
    assert figures(D(100), day_start=D(10100)).daily_pnl == D(-101)


def test_a_position_without_a_price_is_valued_at_cost():
    result = figures(None)

    assert (result.positions_value, result.unrealised_pnl) == (D(200), D(0))
