"""The risk manager's rules: each limit refuses what breaks it and accepts what stays within it."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from apps.trading.domain.fills import OrderType, Side
from apps.trading.domain.risk_rules import (
    AccountRisk,
    MarketRules,
    OrderIntent,
    RefusalCode,
    RiskLimits,
    TradingState,
    check_order,
    next_state,
)

D = Decimal
ACCOUNT = AccountRisk(
    state=TradingState.ACTIVE,
    equity=D(10000),
    peak_equity=D(10000),
    day_start_equity=D(10000),
    positions_value=D(2000),
    open_buy_notional=D(0),
    available_cash=D(8000),
    instrument_position_value=D(1000),
    instrument_open_buy_notional=D(0),
    position_quantity=D(10),
    sellable_quantity=D(10),
    open_orders=2,
    open_positions=2,
    orders_last_minute=3,
)
BUY = OrderIntent(
    side=Side.BUY, type=OrderType.LIMIT, quantity=D(10), price=D(100), stop_price=None, last_price=D(100)
)
SELL = replace(BUY, side=Side.SELL)
MARKET = MarketRules(min_amount=D("0.001"), min_notional=D(5))


def refusal(
    limits: RiskLimits, order: OrderIntent = BUY, account: AccountRisk = ACCOUNT, market: MarketRules = MARKET
):
    found = check_order(limits, market, account, order)
    return None if found is None else found.code


# (limits, order/account changes that break them, changes that stay within them, expected code)
CASES = [
    (
        RiskLimits(max_order_notional=D(1000)),
        {"quantity": D("10.01")},
        {"quantity": D(10)},
        RefusalCode.MAX_ORDER_NOTIONAL,
    ),
    (
        RiskLimits(max_position_notional=D(2000)),
        {"quantity": D("10.01")},
        {"quantity": D(10)},
        RefusalCode.MAX_POSITION_NOTIONAL,
    ),
    (
        RiskLimits(max_position_pct=D("0.2")),
        {"quantity": D("10.01")},
        {"quantity": D(10)},
        RefusalCode.MAX_POSITION_PCT,
    ),
    (
        RiskLimits(max_exposure_pct=D("0.3")),
        {"quantity": D("10.01")},
        {"quantity": D(10)},
        RefusalCode.MAX_EXPOSURE_PCT,
    ),
    (RiskLimits(price_band_pct=D("0.05")), {"price": D("105.01")}, {"price": D(105)}, RefusalCode.PRICE_BAND),
    (RiskLimits(), {"quantity": D("0.0009")}, {"quantity": D("0.05")}, RefusalCode.MIN_AMOUNT),
    (RiskLimits(), {"quantity": D("0.0499")}, {"quantity": D("0.05")}, RefusalCode.MIN_NOTIONAL),
    (RiskLimits(), {"quantity": D("80.01")}, {"quantity": D(80)}, RefusalCode.INSUFFICIENT_FUNDS),
]


@pytest.mark.parametrize(("limits", "breaks", "within", "code"), CASES, ids=[c[3].value for c in CASES])
def test_each_order_limit_refuses_what_breaks_it_and_accepts_what_stays_within(limits, breaks, within, code):
    assert refusal(limits, replace(BUY, **breaks)) == code
    assert refusal(limits, replace(BUY, **within)) is None


ACCOUNT_CASES = [
    (RiskLimits(max_open_orders=3), {"open_orders": 3}, {"open_orders": 2}, RefusalCode.MAX_OPEN_ORDERS),
    (
        RiskLimits(max_orders_per_minute=4),
        {"orders_last_minute": 4},
        {"orders_last_minute": 3},
        RefusalCode.ORDER_RATE,
    ),
    (
        RiskLimits(max_open_positions=2),
        {"position_quantity": D(0), "instrument_position_value": D(0)},
        {"position_quantity": D(10)},
        RefusalCode.MAX_OPEN_POSITIONS,
    ),
]


@pytest.mark.parametrize(
    ("limits", "breaks", "within", "code"), ACCOUNT_CASES, ids=[c[3].value for c in ACCOUNT_CASES]
)
def test_each_account_limit_refuses_at_the_limit_and_accepts_below_it(limits, breaks, within, code):
    assert refusal(limits, account=replace(ACCOUNT, **breaks)) == code
    assert refusal(limits, account=replace(ACCOUNT, **within)) is None


def test_open_buys_count_towards_the_position_and_exposure_limits():
    limits = RiskLimits(max_position_notional=D(2000))
    waiting = replace(ACCOUNT, instrument_open_buy_notional=D(500), open_buy_notional=D(500))

    assert refusal(limits, replace(BUY, quantity=D(5)), account=waiting) is None
    assert (
        refusal(limits, replace(BUY, quantity=D("5.01")), account=waiting)
        == RefusalCode.MAX_POSITION_NOTIONAL
    )


def test_a_buy_is_checked_against_its_cost_with_fees_not_only_its_notional():
    order = replace(BUY, quantity=D(80), cost=D("8008"))

    assert refusal(RiskLimits(), order) == RefusalCode.INSUFFICIENT_FUNDS


def test_a_sell_beyond_what_is_held_and_not_already_offered_is_refused():
    offered = replace(ACCOUNT, sellable_quantity=D(4))

    assert (
        refusal(RiskLimits(), replace(SELL, quantity=D(5)), account=offered)
        == RefusalCode.INSUFFICIENT_POSITION
    )
    assert refusal(RiskLimits(), replace(SELL, quantity=D(4)), account=offered) is None


def test_a_halted_account_refuses_everything_even_a_sell():
    halted = replace(ACCOUNT, state=TradingState.HALTED)

    assert refusal(RiskLimits(), SELL, account=halted) == RefusalCode.TRADING_HALTED


def test_a_reducing_account_accepts_sells_of_what_it_holds_and_nothing_else():
    reducing = replace(ACCOUNT, state=TradingState.REDUCING)

    assert refusal(RiskLimits(), BUY, account=reducing) == RefusalCode.REDUCING_ONLY
    assert refusal(RiskLimits(), replace(SELL, quantity=D(11)), account=reducing) == RefusalCode.REDUCING_ONLY
    assert refusal(RiskLimits(), SELL, account=reducing) is None


def test_a_stop_already_beyond_the_last_price_is_refused_as_triggering_at_once():
    stop = replace(SELL, type=OrderType.STOP_LOSS, price=None, stop_price=D(101))

    assert refusal(RiskLimits(), stop) == RefusalCode.WOULD_TRIGGER_IMMEDIATELY
    assert refusal(RiskLimits(), replace(stop, stop_price=D(99))) is None


def test_a_market_order_with_an_expected_price_far_from_the_last_is_a_fat_finger():
    market = replace(BUY, type=OrderType.MARKET, price=None, expected_price=D(1000))

    assert refusal(RiskLimits(price_band_pct=D("0.1")), market) == RefusalCode.PRICE_BAND
    assert refusal(RiskLimits(price_band_pct=D("0.1")), replace(market, expected_price=None)) is None


def test_protective_orders_are_exempt_from_the_price_band_only():
    target = replace(SELL, type=OrderType.TAKE_PROFIT, price=None, stop_price=D(130), check_price_band=False)

    assert refusal(RiskLimits(price_band_pct=D("0.05")), target) is None
    assert (
        refusal(RiskLimits(price_band_pct=D("0.05")), replace(target, check_price_band=True))
        == RefusalCode.PRICE_BAND
    )


def test_an_order_without_a_known_price_is_refused():
    assert refusal(RiskLimits(), replace(BUY, last_price=None)) == RefusalCode.NO_PRICE


def test_a_refusal_names_the_limit_its_value_and_what_the_order_came_to():
    found = check_order(RiskLimits(max_order_notional=D(500)), MARKET, ACCOUNT, BUY)

    assert found is not None
    assert found.as_dict() | {"message": ""} == {
        "code": "max_order_notional",
        "limit": "max_order_notional",
        "limit_value": "500",
        "actual": "1000.00000000",
        "message": "",
    }


def test_the_daily_loss_limit_switches_to_reducing_and_the_drawdown_limit_halts():
    limits = RiskLimits(max_daily_loss_pct=D("0.05"), max_drawdown_pct=D("0.2"))

    assert next_state(limits, replace(ACCOUNT, equity=D(9501)))[0] == TradingState.ACTIVE
    assert next_state(limits, replace(ACCOUNT, equity=D(9500)))[0] == TradingState.REDUCING
    deep = replace(ACCOUNT, equity=D(8000), peak_equity=D(10000), day_start_equity=D(8000))
    assert next_state(limits, deep)[0] == TradingState.HALTED
    assert next_state(limits, replace(deep, equity=D(8001)))[0] == TradingState.ACTIVE


def test_a_halted_account_stays_halted_whatever_its_equity():
    halted = replace(ACCOUNT, state=TradingState.HALTED, equity=D(20000))

    assert next_state(RiskLimits(max_drawdown_pct=D("0.1")), halted) == (TradingState.HALTED, "")
