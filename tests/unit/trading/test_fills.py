"""The shared fill rules: where resting orders fill on a bar, and that the backtester fills the same way."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from apps.strategies.engine import RiskSettings, backtest_signals
from apps.trading.domain.fills import (
    Bar,
    ExitReason,
    OrderType,
    Side,
    bracket_exit,
    stop_limit_outcome,
    touch_price,
    triggers_at,
    with_slippage,
)
from tests.unit.strategies.candles import random_codes, random_walk

BAR = Bar(open=100.0, high=110.0, low=90.0, close=105.0)


@pytest.mark.parametrize(
    ("side", "order_type", "level", "price"),
    [
        (Side.BUY, OrderType.LIMIT, 95.0, 95.0),  # reached inside the bar: at the level
        (Side.BUY, OrderType.LIMIT, 101.0, 100.0),  # the bar opens below the limit: at the open
        (Side.BUY, OrderType.LIMIT, 89.0, None),
        (Side.SELL, OrderType.LIMIT, 108.0, 108.0),
        (Side.SELL, OrderType.LIMIT, 99.0, 100.0),
        (Side.SELL, OrderType.STOP_LOSS, 92.0, 92.0),
        (Side.SELL, OrderType.STOP_LOSS, 102.0, 100.0),  # gap through the stop: at the open
        (Side.SELL, OrderType.STOP_LOSS, 89.0, None),
        (Side.SELL, OrderType.TAKE_PROFIT, 109.0, 109.0),
        (Side.SELL, OrderType.TAKE_PROFIT, 111.0, None),
        (Side.BUY, OrderType.STOP_LOSS, 109.0, 109.0),
        (Side.BUY, OrderType.TAKE_PROFIT, 91.0, 91.0),
    ],
)
def test_a_resting_order_fills_at_its_level_or_at_a_gapped_open(side, order_type, level, price):
    assert touch_price(side, order_type, level, BAR) == price


def test_a_bracket_that_touches_both_levels_assumes_the_stop_first():
    assert bracket_exit(BAR, Side.SELL, stop=95.0, target=108.0) == (95.0, ExitReason.STOP_LOSS)


def test_a_bracket_whose_bar_opens_beyond_the_target_takes_profit_at_the_open_even_if_the_stop_is_touched():
    assert bracket_exit(BAR, Side.SELL, stop=95.0, target=99.0) == (100.0, ExitReason.TAKE_PROFIT)


def test_a_bracket_whose_bar_gaps_through_the_stop_exits_at_the_open():
    assert bracket_exit(BAR, Side.SELL, stop=101.0, target=108.0) == (100.0, ExitReason.STOP_LOSS)


def test_a_bracket_untouched_by_the_bar_stays():
    assert bracket_exit(BAR, Side.SELL, stop=80.0, target=120.0) is None


def test_a_stop_limit_triggers_at_its_stop_and_fills_when_the_trigger_price_meets_its_limit():
    filled = stop_limit_outcome(Side.SELL, 95.0, 94.0, BAR)
    gapped = stop_limit_outcome(Side.SELL, 102.0, 101.0, BAR)  # triggers at the open 100, below its limit
    untouched = stop_limit_outcome(Side.SELL, 80.0, 79.0, BAR)

    assert (filled.triggered, filled.fill_price) == (True, 95.0)
    assert (gapped.triggered, gapped.fill_price) == (True, None)
    assert (untouched.triggered, untouched.fill_price) == (False, None)


def test_slippage_moves_buys_up_and_sells_down_in_decimal_too():
    assert with_slippage(Decimal(100), Side.BUY, Decimal("0.001")) == Decimal("100.100")
    assert with_slippage(Decimal(100), Side.SELL, Decimal("0.001")) == Decimal("99.900")


def test_an_order_beyond_its_level_at_the_market_price_would_trigger_at_once():
    assert triggers_at(Side.SELL, OrderType.STOP_LOSS, 100.0, 99.0)
    assert not triggers_at(Side.SELL, OrderType.STOP_LOSS, 100.0, 101.0)
    assert triggers_at(Side.BUY, OrderType.LIMIT, 100.0, 99.5)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_stop_and_target_exit_of_the_backtester_is_the_bracket_rule_on_its_bar(seed):
    frame = random_walk(3000, seed, volatility=0.02, gaps=0.01)
    codes = random_codes(3000, seed, density=0.05)
    risk = RiskSettings(stop_loss_pct=0.03, take_profit_pct=0.05)
    trades = backtest_signals(frame, codes, risk, commission=0.0, slippage=0.0).trades
    opens, highs, lows, closes = (frame[c].to_numpy() for c in ("open", "high", "low", "close"))
    protected = 0
    for k in range(len(trades.entry_bar)):
        stop, target = trades.entry_price[k] * 0.97, trades.entry_price[k] * 1.05
        first_hit = None
        for bar in range(trades.entry_bar[k], trades.exit_bar[k] + 1):
            hit = bracket_exit(Bar(opens[bar], highs[bar], lows[bar], closes[bar]), Side.SELL, stop, target)
            if hit is not None:
                first_hit = (bar, *hit)
                break
        reason = trades.exit_reason[k]
        if reason in ("stop_loss", "take_profit"):
            protected += 1
            assert first_hit is not None
            assert (first_hit[0], first_hit[2].value) == (trades.exit_bar[k], reason)
            assert first_hit[1] == pytest.approx(trades.exit_price[k], rel=1e-12)
        else:
            assert first_hit is None or (first_hit[0] == trades.exit_bar[k] and reason == "signal")
    assert protected > 20  # the comparison covered many stop and target exits
    assert (
        np.isin(trades.exit_reason, ["stop_loss"]).any()
        and np.isin(trades.exit_reason, ["take_profit"]).any()
    )
