"""Properties of every backtest, checked on random candles, signals and settings with hypothesis."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.strategies.engine.backtest import (
    BacktestError,
    CheckedBars,
    RiskSettings,
    backtest_equity,
    backtest_signals,
    run_backtest,
)
from apps.strategies.engine.rules import Rule, signals

from .candles import flat, random_codes, random_walk

RULE_SETS = [
    [Rule("SMA(5) crosses_above SMA(12)", "buy"), Rule("SMA(5) crosses_below SMA(12)", "sell")],
    [Rule("RSI(6) < 35", "buy"), Rule("RSI(6) > 65", "sell", 2), Rule("RSI(6) > 60", "short", 3)],
    [Rule("not close > EMA(8) and close[2] > close[1]", "buy"), Rule("close > high[1] or RSI < 20", "cover")],
    [Rule("MACD(4,9,3).histogram crosses_above 0", "buy"), Rule("BB(10,1.5).percent_b > 0.9", "sell")],
]

risks = st.builds(
    RiskSettings,
    stop_loss_pct=st.one_of(st.none(), st.floats(0.002, 0.05)),
    take_profit_pct=st.one_of(st.none(), st.floats(0.002, 0.08)),
    trailing_stop_pct=st.one_of(st.none(), st.floats(0.002, 0.05)),
    max_holding_bars=st.one_of(st.none(), st.integers(1, 30)),
    allow_short=st.booleans(),
)


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 300),
    risk=risks,
    commission=st.sampled_from([0.0, 0.001, 0.02]),
    slippage=st.sampled_from([0.0, 0.002]),
)
def test_equity_is_cash_plus_position_value_minus_fees_on_every_bar(seed, n, risk, commission, slippage):
    """equity[t] = capital + sum(pnl of trades closed by t)
                   + side * quantity * (close[t] - entry_price) - commission * quantity * entry_price
    for the trade open at t's close: the closed trades' pnl already has both fees taken out, the open
    one has paid its entry fee. Trade fees are commission * quantity * (entry_price + exit_price)."""
    frame = random_walk(n, seed)
    close = frame["close"].to_numpy()
    report = backtest_signals(
        frame, random_codes(n, seed + 1, density=0.3), risk, commission=commission, slippage=slippage
    )
    trades = report.trades
    expected = np.full(n, report.initial_capital)
    expected_position = np.zeros(n)
    for k in range(len(trades)):
        entry, exit_bar, side, quantity = (
            trades.entry_bar[k],
            trades.exit_bar[k],
            trades.side[k],
            trades.quantity[k],
        )
        held = slice(entry, exit_bar)  # at these closes the trade is open; it is closed at exit_bar's
        expected[held] += side * quantity * (close[held] - trades.entry_price[k])
        expected[held] -= commission * quantity * trades.entry_price[k]
        expected_position[held] = side * quantity
        expected[exit_bar:] += trades.pnl[k]
        assert trades.fees[k] == pytest.approx(
            commission * quantity * (trades.entry_price[k] + trades.exit_price[k])
        )
    curve = report.equity_curve
    scale = report.initial_capital
    np.testing.assert_allclose(curve.equity, expected, rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_allclose(curve.position, expected_position, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        curve.equity, curve.cash + curve.position * close, rtol=1e-12, atol=1e-9 * scale
    )
    assert report.final_equity == pytest.approx(scale + trades.pnl.sum(), rel=1e-9, abs=1e-9 * scale)
    assert report.fees_paid == pytest.approx(trades.fees.sum())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), rules=st.sampled_from(RULE_SETS), cut=st.floats(0.05, 0.95))
def test_signals_on_a_prefix_of_the_data_equal_the_full_runs_signals(seed, rules, cut):
    frame = random_walk(250, seed)
    t = max(1, int(len(frame) * cut))
    full = signals(rules, frame, {})
    assert signals(rules, frame.iloc[:t], {}).tolist() == full[:t].tolist()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), rules=st.sampled_from(RULE_SETS), risk=risks, cut=st.floats(0.1, 0.9))
def test_a_backtest_cut_short_agrees_with_the_full_one_until_the_cut(seed, rules, risk, cut):
    frame = random_walk(250, seed)
    t = int(len(frame) * cut)
    full = run_backtest(frame, rules, {"allow_short": risk.allow_short})
    part = run_backtest(frame.iloc[:t], rules, {"allow_short": risk.allow_short})
    # The cut run closes its last position at bar t - 1; everything before that bar is the same.
    assert part.equity_curve.equity[: t - 1].tolist() == full.equity_curve.equity[: t - 1].tolist()
    finished = full.trades.exit_bar < t - 1
    assert part.trades.exit_bar[: finished.sum()].tolist() == full.trades.exit_bar[finished].tolist()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), rules=st.sampled_from(RULE_SETS), risk=risks)
def test_the_same_input_gives_the_same_report(seed, rules, risk):
    frame = random_walk(300, seed)
    parameters = {"stop_loss_pct": risk.stop_loss_pct, "allow_short": risk.allow_short}
    first = run_backtest(frame, rules, parameters).to_dict()
    second = run_backtest(frame.copy(), list(rules), dict(parameters)).to_dict()
    assert json.dumps(first, allow_nan=False) == json.dumps(second, allow_nan=False)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 200), risk=risks)
def test_no_trades_and_no_commission_give_back_the_initial_capital(seed, n, risk):
    report = backtest_signals(random_walk(n, seed), np.zeros(n, dtype=np.int8), risk, commission=0.0)
    assert report.num_trades == 0
    assert report.final_equity == report.initial_capital
    assert set(report.equity_curve.equity.tolist()) == {report.initial_capital}


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 100), risk=risks)
def test_trading_at_an_unchanging_price_without_costs_gives_back_the_initial_capital(seed, n, risk):
    report = backtest_signals(flat([50.0] * n), random_codes(n, seed, density=0.5), risk, commission=0.0)
    assert report.final_equity == pytest.approx(report.initial_capital, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    risk=risks,
    start=st.integers(0, 150),
    length=st.integers(1, 150),
    commission=st.sampled_from([0.0, 0.001]),
)
def test_a_window_of_checked_bars_backtests_as_the_frame_sliced_to_it(seed, risk, start, length, commission):
    # Searches check a frame once and backtest windows of it; the answer must be the sliced frame's.
    frame = random_walk(300, seed=seed)
    codes = random_codes(300, seed=seed + 1)
    part = slice(start, start + length)
    expected = backtest_signals(frame.iloc[part], codes[part], risk, commission=commission)
    bars = CheckedBars.of(frame).window(part)
    got = backtest_signals(bars, codes[part], risk, commission=commission)
    assert json.dumps(got.to_dict(), sort_keys=True) == json.dumps(expected.to_dict(), sort_keys=True)
    curve = backtest_equity(bars, codes[part], risk, commission=commission)
    np.testing.assert_array_equal(curve.equity, expected.equity_curve.equity)
    np.testing.assert_array_equal(curve.times, expected.equity_curve.times)


def test_checked_bars_refuse_what_a_frame_check_refuses():
    frame = random_walk(50, seed=3)
    frame.iloc[10, frame.columns.get_loc("close")] = np.nan
    with pytest.raises(BacktestError, match="not a finite number on 1 candle"):
        CheckedBars.of(frame)
    with pytest.raises(BacktestError, match="non-empty"):
        CheckedBars.of(random_walk(50, seed=3)).window(slice(60, 70))
    with pytest.raises(BacktestError, match="got 3 signals for 50 bars"):
        backtest_equity(CheckedBars.of(random_walk(50, seed=3)), np.zeros(3, dtype=np.int8), RiskSettings())
