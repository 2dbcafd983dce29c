"""Hand-computed backtests: order timing, sizing, fees, every exit type, gaps, shorts and adds."""

from __future__ import annotations

import numpy as np
import pytest

from apps.strategies.engine.backtest import BacktestError, RiskSettings, backtest_signals, run_backtest
from apps.strategies.engine.rules import Action

from .candles import bars, flat

B, S, SH, C = Action.BUY, Action.SELL, Action.SHORT, Action.COVER
FLAT = (100.0, 100.0, 100.0, 100.0)


def run(frame, codes, capital=1000.0, commission=0.0, slippage=0.0, **risk):
    return backtest_signals(
        frame,
        np.array(codes, dtype=np.int8),
        RiskSettings(**risk),
        initial_capital=capital,
        commission=commission,
        slippage=slippage,
    )


def only_trade(report):
    assert report.num_trades == 1
    return report.trades.records()[0]


def test_a_signal_on_a_close_fills_at_the_next_open_with_fees_on_both_sides():
    frame = bars(
        [FLAT, FLAT, (110, 112, 108, 111), (111, 115, 110, 114), (120, 121, 119, 120), (120, 121, 117, 118)]
    )
    report = run(frame, [0, B, 0, S, 0, 0], commission=0.001)
    trade = only_trade(report)
    quantity = 1000 / (110 * 1.001)
    assert (trade["entry_bar"], trade["exit_bar"], trade["exit_reason"]) == (2, 4, "signal")
    assert (trade["entry_price"], trade["exit_price"]) == (110, 120)
    assert trade["quantity"] == pytest.approx(quantity)
    assert trade["fees"] == pytest.approx(0.001 * quantity * (110 + 120))
    assert trade["pnl"] == pytest.approx(quantity * 120 * 0.999 - 1000)
    assert trade["entry_time"] == "2024-01-01T02:00:00Z"
    assert report.final_equity == pytest.approx(1000 + trade["pnl"])
    expected_equity = [1000, 1000, quantity * 111, quantity * 114, 1000 + trade["pnl"], 1000 + trade["pnl"]]
    np.testing.assert_allclose(report.equity_curve.equity, expected_equity, atol=1e-9)
    assert report.fees_paid == pytest.approx(trade["fees"])


def test_slippage_moves_both_fills_against_the_trader():
    frame = bars([FLAT, FLAT, FLAT, (120, 120, 120, 120), (120, 120, 120, 120)])
    trade = only_trade(run(frame, [B, 0, S, 0, 0], commission=0.001, slippage=0.01))
    assert trade["entry_price"] == pytest.approx(101.0)
    assert trade["exit_price"] == pytest.approx(118.8)
    assert trade["fees"] == pytest.approx(0.001 * trade["quantity"] * (101 + 118.8))


def test_sell_while_flat_buy_while_fully_invested_and_a_last_bar_signal_do_nothing():
    frame = flat([100, 100, 101, 102, 103, 104])
    report = run(frame, [S, B, B, B, 0, S])
    trade = only_trade(report)
    assert (trade["entry_bar"], trade["exit_bar"], trade["exit_reason"]) == (2, 5, "end")
    assert run(frame, [0, 0, 0, 0, 0, B]).num_trades == 0


def test_an_open_position_is_closed_at_the_last_close_with_costs():
    frame = bars([FLAT, (100, 101, 99, 100), (100, 106, 99, 105)])
    trade = only_trade(run(frame, [B, 0, 0], commission=0.001, slippage=0.001))
    assert (trade["exit_bar"], trade["exit_reason"]) == (2, "end")
    assert trade["exit_price"] == pytest.approx(105 * 0.999)


def entry_then(*later_bars, **risk):
    """Enter long at 100 on the open of bar 1, then the given bars."""
    frame = bars([FLAT, *later_bars])
    codes = [B] + [0] * len(later_bars)
    return only_trade(run(frame, codes, **risk))


def test_a_stop_loss_fills_at_its_level_when_the_low_reaches_it():
    trade = entry_then((100, 101, 99, 100), (99, 100, 94, 96), FLAT, stop_loss_pct=0.05)
    assert (trade["exit_bar"], trade["exit_price"], trade["exit_reason"]) == (2, 95, "stop_loss")


def test_a_gap_through_the_stop_fills_at_the_open():
    trade = entry_then((100, 101, 99, 100), (90, 92, 88, 91), FLAT, stop_loss_pct=0.05)
    assert (trade["exit_bar"], trade["exit_price"], trade["exit_reason"]) == (2, 90, "stop_loss")


def test_a_take_profit_fills_at_its_level_or_at_a_gap_open():
    trade = entry_then((100, 101, 99, 100), (104, 111, 103, 109), FLAT, take_profit_pct=0.1)
    assert (trade["exit_bar"], trade["exit_price"], trade["exit_reason"]) == (
        2,
        pytest.approx(110),
        "take_profit",
    )
    trade = entry_then((100, 101, 99, 100), (115, 116, 114, 115), FLAT, take_profit_pct=0.1)
    assert (trade["exit_bar"], trade["exit_price"]) == (2, 115)


def test_when_a_bar_touches_both_the_stop_is_assumed_first():
    trade = entry_then(
        (100, 101, 99, 100), (100, 111, 94, 100), FLAT, stop_loss_pct=0.05, take_profit_pct=0.1
    )
    assert (trade["exit_price"], trade["exit_reason"]) == (95, "stop_loss")


def test_a_bar_that_opens_beyond_the_target_takes_profit_at_the_open_even_if_it_later_falls():
    trade = entry_then((100, 101, 99, 100), (112, 113, 90, 91), FLAT, stop_loss_pct=0.05, take_profit_pct=0.1)
    assert (trade["exit_price"], trade["exit_reason"]) == (112, "take_profit")


def test_stops_apply_on_the_entry_bar_itself():
    trade = entry_then((100, 101, 94, 96), FLAT, stop_loss_pct=0.05)
    assert (trade["entry_bar"], trade["exit_bar"], trade["exit_price"]) == (1, 1, 95)


def test_a_trailing_stop_trails_the_highs_of_earlier_bars_not_the_current_one():
    # Entry bar: its own high of 120 does not lift its stop (90); the next bar's stop is 108.
    trade = entry_then((100, 120, 95, 118), (115, 116, 107, 110), FLAT, trailing_stop_pct=0.1)
    assert (trade["exit_bar"], trade["exit_price"], trade["exit_reason"]) == (
        2,
        pytest.approx(108),
        "trailing_stop",
    )


def test_the_tighter_of_stop_loss_and_trailing_stop_triggers():
    trade = entry_then((100, 101, 97, 100), FLAT, stop_loss_pct=0.05, trailing_stop_pct=0.02)
    assert (trade["exit_price"], trade["exit_reason"]) == (98, "trailing_stop")
    trade = entry_then((100, 101, 94, 100), FLAT, stop_loss_pct=0.05, trailing_stop_pct=0.08)
    assert (trade["exit_price"], trade["exit_reason"]) == (95, "stop_loss")


def test_max_holding_bars_closes_at_the_open_after_that_many_bars():
    trade = entry_then(FLAT, (101, 101, 101, 101), (102, 102, 102, 102), FLAT, max_holding_bars=2)
    assert (trade["entry_bar"], trade["exit_bar"], trade["exit_price"], trade["exit_reason"]) == (
        1,
        3,
        102,
        "max_bars",
    )


def test_a_short_profits_when_the_price_falls_and_is_covered_by_a_cover_signal():
    frame = bars([FLAT, FLAT, (100, 101, 95, 96), (96, 97, 90, 91), (90, 91, 89, 90)])
    report = run(frame, [0, SH, 0, C, 0], commission=0.001, allow_short=True)
    trade = only_trade(report)
    quantity = 1000 / (100 * 1.001)
    assert (trade["side"], trade["entry_bar"], trade["exit_bar"]) == ("short", 2, 4)
    assert trade["pnl"] == pytest.approx(quantity * (100 * 0.999 - 90 * 1.001))
    assert report.equity_curve.position[2] == pytest.approx(-quantity)
    assert report.equity_curve.equity[3] == pytest.approx(
        1000 + quantity * (100 - 91) - 0.001 * quantity * 100
    )


def test_a_short_stop_sits_above_the_entry():
    frame = bars([FLAT, (100, 106, 99, 104), FLAT])
    trade = only_trade(run(frame, [SH, 0, 0], allow_short=True, stop_loss_pct=0.05, take_profit_pct=0.1))
    assert (trade["exit_bar"], trade["exit_price"], trade["exit_reason"]) == (1, 105, "stop_loss")


def test_short_and_cover_are_ignored_unless_shorting_is_allowed():
    frame = flat([100, 100, 90, 80])
    assert run(frame, [SH, 0, C, 0]).num_trades == 0


def test_no_implicit_reversal_from_long_to_short():
    frame = flat([100, 100, 110, 120, 120])
    trade = only_trade(run(frame, [B, SH, 0, S, 0], allow_short=True))
    assert (trade["side"], trade["exit_bar"]) == ("long", 4)


def test_buy_while_long_adds_only_while_a_position_size_below_one_leaves_cash():
    frame = flat([100, 100, 110, 120, 130, 130])
    report = run(frame, [B, B, B, B, S, 0], position_size_pct=0.5)
    trade = only_trade(report)
    first = 500 / 100  # half the equity at 100
    added = 500 / 110  # the other half of the cash: the equity's half (525) would exceed it
    assert trade["quantity"] == pytest.approx(first + added)
    assert trade["entry_price"] == pytest.approx((100 * first + 110 * added) / (first + added))
    assert report.equity_curve.position.tolist()[1:4] == pytest.approx([first, first + added, first + added])
    assert trade["pnl"] == pytest.approx((first + added) * 130 - 1000)


def test_stops_follow_the_average_price_after_an_add():
    # Average 109.09 after the add: its 5% stop (103.6) is hit at bar 3; the first entry's (95) would not be.
    frame = bars([FLAT, FLAT, (120, 120, 120, 120), (120, 120, 100, 110), FLAT])
    trade = only_trade(run(frame, [B, B, 0, 0, 0], position_size_pct=0.5, stop_loss_pct=0.05))
    average = trade["entry_price"]
    assert 100 < average < 120
    assert (trade["exit_bar"], trade["exit_price"]) == (3, pytest.approx(average * 0.95))


def test_a_strategy_that_never_fires_keeps_the_capital():
    report = run_backtest(flat([100, 101, 99, 100]), [{"condition": "close < 0", "action": "buy"}], {})
    assert report.num_trades == 0
    assert report.final_equity == 10_000.0
    assert report.exposure_pct == 0


def test_rules_drive_the_backtest_one_bar_later():
    frame = flat([10, 11, 12, 11, 10, 9, 10, 12, 12])
    rules = [
        {"condition": "close crosses_above 10.5", "action": "buy"},
        {"condition": "close < 10", "action": "sell"},
    ]
    trades = run_backtest(frame, rules, {}, commission=0).trades.records()
    assert [(t["entry_bar"], t["exit_bar"], t["exit_reason"]) for t in trades] == [
        (2, 6, "signal"),
        (8, 8, "end"),
    ]


def test_exposure_counts_bars_with_a_position_for_part_of_the_bar():
    frame = flat([100] * 10)
    report = run(frame, [B, 0, S, 0, 0, 0, 0, 0, B, 0])
    # Held on bars 1-2 (sold at the open of 3), then bar 9 until the final close.
    assert report.exposure_pct == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"stop_loss_pct": 1.5}, "stop_loss_pct"),
        ({"take_profit_pct": -0.1}, "take_profit_pct"),
        ({"position_size_pct": 1.2}, "position_size_pct"),
        ({"max_holding_bars": 2.5}, "max_holding_bars"),
        ({"allow_short": "yes"}, "allow_short"),
    ],
)
def test_it_rejects_invalid_risk_parameters(parameters, message):
    with pytest.raises(BacktestError, match=message):
        RiskSettings.from_parameters(parameters)


def test_zero_or_null_disables_a_risk_limit():
    risk = RiskSettings.from_parameters(
        {"stop_loss_pct": 0, "take_profit_pct": None, "max_holding_bars": 0.0}
    )
    assert risk == RiskSettings()


def test_it_rejects_candles_it_cannot_trade():
    frame = flat([100, 101])
    with pytest.raises(BacktestError, match="UTC DatetimeIndex"):
        run(frame.reset_index(drop=True), [0, 0])
    with pytest.raises(BacktestError, match="UTC DatetimeIndex"):
        run(frame.tz_localize(None), [0, 0])
    with pytest.raises(BacktestError, match="UTC DatetimeIndex"):
        run(frame.tz_convert("Europe/Berlin"), [0, 0])
    with pytest.raises(BacktestError, match="not a finite number"):
        run(frame.assign(low=[100, np.nan]), [0, 0])
    with pytest.raises(BacktestError, match="high is below"):
        run(frame.assign(high=[99.0, 101.0]), [0, 0])
    with pytest.raises(BacktestError, match="repeats"):
        run(frame.set_axis([frame.index[0]] * 2), [0, 0])
    with pytest.raises(BacktestError, match="non-empty"):
        run(frame.iloc[:0], [])
    with pytest.raises(BacktestError, match="signals for 2 bars"):
        run(frame, [0])
    with pytest.raises(BacktestError, match="Action values"):
        run(frame, [7, 0])


def test_it_rejects_invalid_costs_and_timeframes():
    frame = flat([100, 101])
    with pytest.raises(BacktestError, match="commission"):
        backtest_signals(frame, np.zeros(2), RiskSettings(), commission=-0.1)
    with pytest.raises(BacktestError, match="timeframe"):
        run_backtest(frame, [], {}, timeframe="hourly")
