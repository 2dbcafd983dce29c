"""Resting paper orders matched against new candles by the backtester's rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.trading.models import Fill, OrderStatus, Position
from apps.trading.services.orders import order_place
from apps.trading.services.paper_matching import paper_orders_match

from .conftest import LAST_CLOSE, hour, store_candles

D = Decimal
SLIP = D("1.0005")


def candle(n: int, open_: str, high: str, low: str, close: str) -> tuple:
    return (int(hour(n).timestamp() * 1000), open_, high, low, close, "10")


def place(account, **order):
    defaults = {"symbol": "BTCUSDT", "quantity": D(1), "at": hour(5), "created_by": "test"}
    return order_place(account=account, **{**defaults, **order}).order


@pytest.fixture
def holding(paper_account, btcusdt):
    """The paper account holding 2 BTC bought at the last price."""
    place(paper_account, side="BUY", type="MARKET", quantity=D(2))
    return paper_account


def test_a_limit_buy_fills_at_its_price_when_a_later_candle_reaches_it(paper_account, btcusdt):
    order = place(paper_account, side="BUY", type="LIMIT", price=D(100))
    store_candles(
        btcusdt, [candle(5, "102", "103", "101", "102"), candle(6, "101.5", "102", "99.5", "100.5")]
    )

    assert paper_orders_match() == 1

    order.refresh_from_db()
    assert (order.status, order.average_price) == (OrderStatus.FILLED, D(100))
    assert order.fills.get().executed_at == hour(6)
    assert paper_orders_match() == 0  # matched once, however often the job runs


def test_a_candle_that_opens_through_the_limit_fills_at_the_open(paper_account, btcusdt):
    order = place(paper_account, side="BUY", type="LIMIT", price=D(100))
    store_candles(btcusdt, [candle(5, "98", "99", "97", "98.5")])

    paper_orders_match()

    order.refresh_from_db()
    assert order.average_price == D(98)


def test_candles_that_opened_before_the_order_cannot_fill_it(paper_account, btcusdt):
    order = place(paper_account, side="BUY", type="LIMIT", price=D(100), at=hour(5) + (hour(1) - hour(0)) / 2)
    store_candles(btcusdt, [candle(5, "101", "101", "95", "101")])  # opened half an hour before the order

    paper_orders_match()

    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN


def test_a_stop_loss_fills_at_its_level_moved_by_slippage(holding, btcusdt):
    stop = place(holding, side="SELL", type="STOP_LOSS", stop_price=D(99))
    store_candles(btcusdt, [candle(5, "102", "102.5", "98", "98.5")])

    paper_orders_match()

    stop.refresh_from_db()
    assert (stop.status, stop.average_price) == (OrderStatus.FILLED, D(99) * (2 - SLIP))


def test_a_bracket_touched_on_both_sides_in_one_candle_fills_the_stop_and_cancels_the_target(
    holding, btcusdt
):
    stop = place(holding, side="SELL", type="STOP_LOSS", stop_price=D(99), quantity=D(2), oco_group="pair")
    target = place(
        holding, side="SELL", type="TAKE_PROFIT", stop_price=D(105), quantity=D(2), oco_group="pair"
    )
    store_candles(btcusdt, [candle(5, "102", "106", "98", "103")])

    paper_orders_match()

    stop.refresh_from_db(), target.refresh_from_db()
    assert (stop.status, target.status) == (OrderStatus.FILLED, OrderStatus.CANCELED)
    assert Position.objects.get(account=holding).quantity == 0


def test_the_two_orders_of_a_bracket_share_the_position_they_protect(holding):
    place(holding, side="SELL", type="STOP_LOSS", stop_price=D(99), quantity=D(2), oco_group="pair")

    target = place(
        holding, side="SELL", type="TAKE_PROFIT", stop_price=D(105), quantity=D(2), oco_group="pair"
    )
    unpaired = place(holding, side="SELL", type="TAKE_PROFIT", stop_price=D(105), quantity=D(2))

    assert target.status == OrderStatus.OPEN
    assert (unpaired.status, unpaired.reject_code) == (OrderStatus.REJECTED, "insufficient_position")


def test_a_stop_limit_that_gaps_past_its_limit_rests_at_the_limit_until_reached(holding, btcusdt):
    order = place(holding, side="SELL", type="STOP_LOSS_LIMIT", stop_price=D(100), price=D(99.5))
    store_candles(btcusdt, [candle(5, "99", "99.4", "98", "99"), candle(6, "99", "99.8", "98.5", "99.7")])

    paper_orders_match()

    order.refresh_from_db()
    assert order.triggered_at == hour(5)
    assert (order.status, order.average_price, order.fills.get().executed_at) == (
        OrderStatus.FILLED,
        D("99.5"),
        hour(6),
    )


def test_a_stop_buy_that_gaps_beyond_the_cash_expires_instead_of_overdrawing(paper_account, btcusdt):
    paper_account.cash = D(120)
    paper_account.save()
    order = place(paper_account, side="BUY", type="STOP_LOSS", stop_price=D(110))
    store_candles(btcusdt, [candle(5, "130", "131", "129", "130")])

    paper_orders_match()

    order.refresh_from_db(), paper_account.refresh_from_db()
    assert (order.status, order.reject_code, paper_account.cash) == (
        OrderStatus.EXPIRED,
        "insufficient_funds",
        D(120),
    )
    assert not Fill.objects.exists()


def test_an_immediate_or_cancel_limit_that_cannot_fill_now_expires(paper_account, btcusdt):
    order = place(paper_account, side="BUY", type="LIMIT", price=D(100), time_in_force="IOC")

    assert order.status == OrderStatus.EXPIRED


def test_a_limit_that_crosses_the_last_price_fills_at_once_no_worse_than_its_limit(paper_account, btcusdt):
    order = place(paper_account, side="BUY", type="LIMIT", price=D("102.27"))

    assert (order.status, order.average_price) == (
        OrderStatus.FILLED,
        D("102.27"),
    )  # the slipped price is 102.30
    assert D("102.27") < LAST_CLOSE * SLIP
