"""The exchange adapter: the real ccxt client against the fake Binance, its answers and errors translated."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from apps.core.errors import PermanentError
from apps.trading.brokers.exchange import ExchangeClient
from apps.trading.domain.fills import OrderType, Side
from apps.trading.errors import ExchangeRejected, OutcomeUnknown
from tests.fakes.exchange import FakeExchange, Fault
from tests.unit.market_providers.conftest import hourly_rows

ORDER = "POST /api/v3/order"
D = Decimal


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange() as exchange:
        exchange.load_klines("BTCUSDT", "1h", hourly_rows(5))
        exchange.set_balance("USDT", "1000")
        yield exchange


@pytest.fixture
def client(fake: FakeExchange) -> ExchangeClient:
    return ExchangeClient(
        "binance", api_key="key", secret="secret", urls_override=fake.base_url, timeout_ms=1000
    )


def place(client: ExchangeClient, **changes: object):
    order = {
        "symbol": "BTC/USDT",
        "side": Side.BUY,
        "type": OrderType.MARKET,
        "quantity": D("0.5"),
        "price": None,
        "stop_price": None,
        "time_in_force": "GTC",
        "client_order_id": "c-1",
    }
    return client.create_order(**{**order, **changes})


def test_a_market_buy_comes_back_filled_with_its_trade_in_decimals(client, fake):
    placed = place(client)

    assert (placed.status, placed.client_order_id, placed.symbol, placed.filled) == (
        "FILLED",
        "c-1",
        "BTCUSDT",
        D("0.5"),
    )
    [trade] = placed.trades
    assert (trade.quantity, trade.price, trade.fee, trade.fee_currency) == (
        D("0.5"),
        D("102.25"),
        D("0.0005"),
        "BTC",
    )
    assert (
        "quoteOrderQty" not in fake.requests(ORDER)[0].params
    )  # a market buy is never sent as a quote amount


def test_a_market_order_with_a_price_is_still_sent_as_a_quantity(client, fake):
    place(client, price=D(100))

    assert fake.requests(ORDER)[0].params["quantity"] == "0.5"


def test_stop_and_take_profit_orders_reach_the_exchange_with_their_binance_types(client, fake):
    fake.set_balance("BTC", "1")

    stop = place(
        client,
        side=Side.SELL,
        type=OrderType.STOP_LOSS,
        quantity=D("0.1"),
        stop_price=D(95),
        client_order_id="s",
    )
    target = place(
        client,
        side=Side.SELL,
        type=OrderType.TAKE_PROFIT,
        quantity=D("0.1"),
        stop_price=D(120),
        client_order_id="t",
    )

    assert [o["type"] for o in fake.orders()] == ["STOP_LOSS", "TAKE_PROFIT"]
    assert (stop.status, stop.type, stop.stop_price, target.stop_price) == (
        "OPEN",
        OrderType.STOP_LOSS,
        D(95),
        D(120),
    )


def test_insufficient_funds_is_a_rejection_with_its_code(client, fake):
    with pytest.raises(ExchangeRejected) as refused:
        place(client, quantity=D(100))

    assert refused.value.code == "insufficient_funds"
    assert fake.orders() == []


def test_a_filter_failure_is_a_rejection(client):
    with pytest.raises(ExchangeRejected) as refused:
        place(client, type=OrderType.LIMIT, quantity=D("0.01"), price=D(100))

    assert refused.value.code == "bad_request"
    assert "NOTIONAL" in refused.value.message


@pytest.mark.parametrize(
    "fault",
    [
        Fault.accept_then_delay(2.5),
        Fault.unknown_outcome(accepted=True),
        Fault.internal_error(),
        Fault.server_error(502),
    ],
    ids=["timeout", "binance-1007", "binance-1001", "http-502"],
)
def test_a_lost_answer_is_an_unknown_outcome_never_a_rejection(client, fake, fault):
    fake.script(ORDER, fault)

    with pytest.raises(OutcomeUnknown):
        place(client)


def test_a_client_order_id_an_open_order_holds_is_an_unknown_outcome_to_look_up(client, fake):
    place(client, type=OrderType.LIMIT, price=D(90), client_order_id="held")

    with pytest.raises(OutcomeUnknown, match="already holds"):
        place(client, type=OrderType.LIMIT, price=D(90), client_order_id="held")


def test_a_rate_limited_order_was_not_placed(client, fake):
    fake.script(ORDER, Fault.rate_limited())

    with pytest.raises(ExchangeRejected) as refused:
        place(client)

    assert refused.value.code == "rate_limited"


def test_an_order_is_found_by_its_client_order_id_and_an_unknown_id_is_none(client):
    placed = place(client, client_order_id="find-me")

    found = client.order_by_client_id(symbol="BTC/USDT", client_order_id="find-me")

    assert (found.exchange_order_id, found.status, found.filled) == (
        placed.exchange_order_id,
        "FILLED",
        D("0.5"),
    )
    assert client.order_by_client_id(symbol="BTC/USDT", client_order_id="never-sent") is None


def test_a_partially_filled_order_reads_as_partially_filled_with_its_trades(client, fake):
    placed = place(client, type=OrderType.LIMIT, price=D(100), client_order_id="part")
    fake.fill_order(client_order_id="part", quantity="0.2")

    found = client.order_by_id(symbol="BTC/USDT", exchange_order_id=placed.exchange_order_id)
    trades = client.trades(symbol="BTC/USDT", exchange_order_id=placed.exchange_order_id)

    assert (found.status, found.filled) == ("PARTIALLY_FILLED", D("0.2"))
    assert [(t.quantity, t.price, t.is_maker) for t in trades] == [(D("0.2"), D(100), True)]


def test_canceling_a_finished_order_finds_nothing_to_cancel(client):
    placed = place(client)

    assert client.cancel_order(symbol="BTC/USDT", exchange_order_id=placed.exchange_order_id) is None


def test_balances_are_decimal_free_and_locked(client):
    place(client, type=OrderType.LIMIT, price=D(100))

    assert client.balances()["USDT"].free == D(950)
    assert client.balances()["USDT"].total == D(1000)


def test_refused_credentials_are_a_permanent_error(client, fake):
    fake.script(
        "GET /api/v3/account",
        Fault.binance_error(-2015, "Invalid API-key, IP, or permissions for action.", 401),
    )

    with pytest.raises(PermanentError, match="Invalid API-key"):
        client.balances()
