"""Break-even costs and the delay test: the analytic shortcuts against re-run backtests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from apps.strategies.engine.backtest import RiskSettings, backtest_signals
from apps.strategies.engine.robustness.cost_stress import break_even_costs
from apps.strategies.engine.robustness.delay import delay_test, is_fragile
from apps.strategies.engine.rules import Action

from .candles import bars, random_codes, random_walk

COSTS = {"commission": 0.0005, "slippage": 0.0002}
TARGETS = {
    "commission_for_zero_return": ("commission", "zero"),
    "commission_for_buy_and_hold": ("commission", "buy_and_hold"),
    "slippage_for_zero_return": ("slippage", "zero"),
    "slippage_for_buy_and_hold": ("slippage", "buy_and_hold"),
}


def foresight(frame, seed, *, short=False, share=0.3, against=False):
    """Signals that peek at the next bar on a ``share`` of the bars: a strategy with an edge to lose
    (or, ``against`` it, a strategy that trades the wrong way every time)."""
    opens = frame["open"].to_numpy()
    rising = np.append(opens[2:] > opens[1:-1], [False, False])
    act = np.random.default_rng(seed).random(len(opens)) < share
    enter, leave = (Action.SHORT, Action.COVER) if short else (Action.BUY, Action.SELL)
    wanted = ~rising if short != against else rising
    return np.where(act, np.where(wanted, enter, leave), Action.NONE).astype(np.int8)


def rerun(frame, codes, risk, report, cost_name, cost):
    costs = {"commission": report.commission, "slippage": report.slippage, cost_name: cost}
    return backtest_signals(frame, codes, risk, **costs).total_return_pct


def target_of(report, kind):
    return 0.0 if kind == "zero" else report.buy_and_hold_return_pct


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    ("risk", "short"),
    [(RiskSettings(), False), (RiskSettings(allow_short=True, max_holding_bars=20), True)],
)
def test_analytic_break_even_costs_equal_a_backtest_re_run_at_that_cost(seed, risk, short):
    frame = random_walk(2000, seed=seed)
    codes = foresight(frame, seed, short=short)
    report = backtest_signals(frame, codes, risk, **COSTS)
    result = break_even_costs(frame, codes, risk, report)
    for field, (cost_name, kind) in TARGETS.items():
        answer = getattr(result, field)
        assert answer.method == "analytic"
        assert answer.cost is not None, answer.reason
        again = rerun(frame, codes, risk, report, cost_name, answer.cost)
        assert again == pytest.approx(target_of(report, kind), abs=1e-8)


def alternating(bars_count, seed, *, short_every=0):
    """Entries and exits that alternate (so nothing is ever added to), long or, every
    ``short_every``-th trade, short; each trade knows whether its holding period will rise."""
    frame = random_walk(bars_count, seed=seed)
    opens = frame["open"].to_numpy()
    codes = np.zeros(bars_count, dtype=np.int8)
    for number, bar in enumerate(range(5, bars_count - 12, 12)):
        short = short_every and number % short_every == 0
        wins = (opens[bar + 7] < opens[bar + 1]) if short else (opens[bar + 7] > opens[bar + 1])
        if wins or number % 3 == 0:
            codes[bar], codes[bar + 6] = (Action.SHORT, Action.COVER) if short else (Action.BUY, Action.SELL)
    return frame, codes


@pytest.mark.parametrize(
    ("risk", "short_every"),
    [
        (RiskSettings(position_size_pct=0.5), 0),  # every trade through the per-trade formula
        (RiskSettings(allow_short=True), 3),  # longs folded into one sum, shorts per trade
    ],
)
def test_partial_sizes_and_mixed_sides_are_solved_analytically_too(risk, short_every):
    frame, codes = alternating(3000, seed=7, short_every=short_every)
    report = backtest_signals(frame, codes, risk, **COSTS)
    result = break_even_costs(frame, codes, risk, report)
    for field, (cost_name, kind) in TARGETS.items():
        answer = getattr(result, field)
        assert answer.method == "analytic"
        if answer.cost is not None:
            again = rerun(frame, codes, risk, report, cost_name, answer.cost)
            assert again == pytest.approx(target_of(report, kind), abs=1e-8)
    assert result.commission_for_zero_return.cost is not None


def test_the_return_falls_as_costs_rise_so_the_break_even_is_the_crossing():
    frame = random_walk(2000, seed=3)
    codes = foresight(frame, 3)
    risk = RiskSettings()
    report = backtest_signals(frame, codes, risk, **COSTS)
    cost = break_even_costs(frame, codes, risk, report).commission_for_zero_return.cost
    assert rerun(frame, codes, risk, report, "commission", cost * 0.9) > 0.0
    assert rerun(frame, codes, risk, report, "commission", cost * 1.1) < 0.0


def test_a_losing_strategy_has_no_break_even_and_says_why():
    frame = random_walk(2000, seed=5)
    codes = foresight(frame, 5, against=True)
    report = backtest_signals(frame, codes, RiskSettings(), **COSTS)
    answer = break_even_costs(frame, codes, RiskSettings(), report).commission_for_zero_return
    assert report.total_return_pct < 0
    assert answer.cost is None and answer.reason == "the return is below zero even with no commission"


def test_with_stops_slippage_is_solved_by_re_running_the_backtester():
    frame = random_walk(1500, seed=1)
    codes = foresight(frame, 1, short=True)
    risk = RiskSettings(stop_loss_pct=0.03, allow_short=True)
    report = backtest_signals(frame, codes, risk, **COSTS)
    result = break_even_costs(frame, codes, risk, report)
    # Commission moves no stop level: still analytic, and exact.
    commission = result.commission_for_zero_return
    assert commission.method == "analytic"
    assert rerun(frame, codes, risk, report, "commission", commission.cost) == pytest.approx(0.0, abs=1e-8)
    # Slippage moves the stop levels, so the return can jump: the answer brackets the crossing.
    slippage = result.slippage_for_zero_return
    assert slippage.method == "backtest"
    assert rerun(frame, codes, risk, report, "slippage", slippage.cost - 1e-6) >= 0.0
    assert rerun(frame, codes, risk, report, "slippage", slippage.cost + 1e-6) <= 0.0


def test_adds_to_a_position_are_detected_and_re_run():
    frame = random_walk(800, seed=2)
    codes = random_codes(800, seed=12, density=0.3)  # buys while long: adds at half size
    risk = RiskSettings(position_size_pct=0.5)
    report = backtest_signals(frame, codes, risk, **COSTS)
    result = break_even_costs(frame, codes, risk, report)
    assert result.commission_for_buy_and_hold.method == "backtest"


def test_a_wiped_out_account_is_re_run_not_rebuilt():
    # A short at 100 that the price squeezes to 300 loses twice the account; the long entries after it
    # never happen in the report, but might at other costs or one bar later.
    rows = [(100.0, 100.0, 100.0, 100.0)] * 5 + [(300.0, 300.0, 300.0, 300.0)] * 5
    rows += [(300.0 + i, 301.0 + i, 299.0 + i, 300.5 + i) for i in range(30)]
    frame = bars(rows)
    codes = np.zeros(len(rows), dtype=np.int8)
    codes[0], codes[7] = Action.SHORT, Action.COVER
    codes[12::6], codes[14::6] = Action.BUY, Action.SELL
    risk = RiskSettings(allow_short=True)
    report = backtest_signals(frame, codes, risk, **COSTS)
    assert report.final_equity < 0 and len(report.trades) == 1
    assert break_even_costs(frame, codes, risk, report).commission_for_zero_return.method == "backtest"
    assert delay_test(frame, codes, risk, report).method == "backtest"


def test_no_break_even_is_invented():
    frame = random_walk(600, seed=4)
    risk = RiskSettings()
    idle = backtest_signals(frame, np.zeros(600, dtype=np.int8), risk, **COSTS)
    result = break_even_costs(frame, np.zeros(600, dtype=np.int8), risk, idle)
    assert result.commission_for_zero_return.cost is None
    assert "no trades" in result.commission_for_zero_return.reason
    assert (
        json.loads(json.dumps(result.to_dict(), allow_nan=False))["slippage_for_zero_return"]["cost"] is None
    )


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    "risk",
    [RiskSettings(), RiskSettings(allow_short=True), RiskSettings(allow_short=True, max_holding_bars=3)],
)
@pytest.mark.parametrize("bars_count", [3, 40, 1500])
def test_the_analytic_delay_equals_re_running_the_shifted_signals(seed, risk, bars_count):
    frame = random_walk(bars_count, seed=seed)
    codes = random_codes(bars_count, seed=seed + 9, density=(0.05, 0.3, 0.9)[seed % 3])
    if seed % 2:  # an entry and an exit signal on the last bars: the delay pushes them off the end
        codes[-2:] = (Action.BUY, Action.SELL)
    report = backtest_signals(frame, codes, risk, **COSTS, timeframe="1d")
    result = delay_test(frame, codes, risk, report)
    shifted = np.concatenate(([Action.NONE], codes[:-1])).astype(np.int8)
    expected = backtest_signals(frame, shifted, risk, **COSTS, timeframe="1d").sharpe_ratio
    assert result.method == "analytic"
    assert result.sharpe == report.sharpe_ratio
    if expected is None:
        assert result.delayed_sharpe is None
    else:
        assert result.delayed_sharpe == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("risk", [RiskSettings(), RiskSettings(allow_short=True)])
def test_the_analytic_delay_streams_a_long_curve_exactly(risk):
    # Long enough for several slices of the streamed curve, with trades straddling their borders.
    frame = random_walk(200_000, seed=17, volatility=0.002)
    codes = random_codes(200_000, seed=18, density=0.01)
    report = backtest_signals(frame, codes, risk, **COSTS)
    shifted = np.concatenate(([Action.NONE], codes[:-1])).astype(np.int8)
    expected = backtest_signals(frame, shifted, risk, **COSTS).sharpe_ratio
    assert delay_test(frame, codes, risk, report).delayed_sharpe == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "risk",
    [
        RiskSettings(stop_loss_pct=0.02),
        RiskSettings(position_size_pct=0.5),
        RiskSettings(take_profit_pct=0.1),
    ],
)
def test_stops_and_adds_make_the_delay_test_re_run_the_backtester(risk):
    frame = random_walk(500, seed=8)
    codes = random_codes(500, seed=18)
    report = backtest_signals(frame, codes, risk)
    result = delay_test(frame, codes, risk, report)
    shifted = np.concatenate(([Action.NONE], codes[:-1])).astype(np.int8)
    assert result.method == "backtest"
    assert result.delayed_sharpe == backtest_signals(frame, shifted, risk).sharpe_ratio


def test_an_edge_that_lives_in_the_next_bar_is_fragile():
    # Every fourth bar's close signals a jump at the next bar that the bar after reverses: filled at
    # the next open the strategy rides the jump, one bar later it rides the reversal.
    rows, price = [], 100.0
    for bar in range(400):
        move = {1: 1.02, 2: 1 / 1.02}.get(bar % 4, 1.0)
        rows.append((price, max(price, price * move), min(price, price * move), price * move))
        price *= move
    frame = bars(rows)
    codes = np.zeros(400, dtype=np.int8)
    codes[0::4], codes[1::4] = Action.BUY, Action.SELL
    report = backtest_signals(frame, codes, RiskSettings(), commission=0.0)
    result = delay_test(frame, codes, RiskSettings(), report)
    assert result.sharpe > 0 and result.delayed_sharpe < 0
    assert result.fragile is True
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["fragile"] is True and "half" in data["rule"]


@pytest.mark.parametrize(
    ("sharpe", "delayed", "fragile"),
    [
        (2.0, 1.5, False),
        (2.0, 1.0, False),
        (2.0, 0.99, True),
        (2.0, -1.0, True),
        (2.0, None, True),
        (0.0, 1.0, None),
        (-1.0, -2.0, None),
        (None, 1.0, None),
    ],
)
def test_the_fragile_rule(sharpe, delayed, fragile):
    assert is_fragile(sharpe, delayed) is fragile
