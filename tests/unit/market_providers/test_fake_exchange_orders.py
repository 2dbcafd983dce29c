"""The fake exchange's order endpoints through the real ccxt Binance client: faithful enough to trust."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

import ccxt
import pytest

from tests.fakes.exchange import FakeExchange, Fault

from .conftest import hourly_rows

ORDER = "POST /api/v3/order"
LAST_CLOSE = Decimal("102.25")  # the close of the fifth of hourly_rows()


@pytest.fixture(autouse=True)
def funded(fake: FakeExchange) -> None:
    fake.load_klines("BTCUSDT", "1h", hourly_rows(5))
    fake.set_balance("USDT", "1000")


def raw_request(fake: FakeExchange, method: str, path: str, params: dict[str, str], key: str | None = "k"):
    """A hand-made request (any signature passes), for what ccxt would refuse to send."""
    body = urllib.parse.urlencode({**params, "timestamp": "1", "signature": "any"}).encode()
    request = urllib.request.Request(fake.base_url + path, data=body, method=method)
    if key:
        request.add_header("X-MBX-APIKEY", key)
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_market_buy_fills_at_the_last_close_and_pays_commission_in_the_base_asset(fake, binance):
    order = binance.create_order("BTC/USDT", "market", "buy", 0.5, params={"clientOrderId": "buy-1"})

    assert (order["status"], order["clientOrderId"], order["filled"]) == ("closed", "buy-1", 0.5)
    assert order["average"] == float(LAST_CLOSE)
    assert order["fee"] == {"currency": "BTC", "cost": 0.0005}
    assert fake.balance("USDT") == (Decimal(1000) - Decimal("0.5") * LAST_CLOSE, 0)
    assert fake.balance("BTC") == (Decimal("0.4995"), 0)
    [trade] = binance.fetch_my_trades("BTC/USDT")
    assert (trade["order"], trade["side"], trade["takerOrMaker"]) == (order["id"], "buy", "taker")
    assert (trade["price"], trade["amount"]) == (float(LAST_CLOSE), 0.5)


def test_an_order_beyond_the_balance_is_refused_as_insufficient_funds(fake, binance):
    with pytest.raises(ccxt.InsufficientFunds, match="Account has insufficient balance for requested action"):
        binance.create_order("BTC/USDT", "market", "buy", 10)

    [request] = fake.requests(ORDER)
    assert request.status == 400
    assert fake.orders() == []
    assert fake.balance("USDT") == (Decimal(1000), 0)


def test_a_sell_of_more_than_is_held_is_refused_as_insufficient_funds(fake, binance):
    fake.set_balance("BTC", "0.1")

    with pytest.raises(ccxt.InsufficientFunds):
        binance.create_order("BTC/USDT", "limit", "sell", 0.2, 150)

    assert fake.balance("BTC") == (Decimal("0.1"), 0)


def test_a_client_order_id_held_by_an_open_order_is_refused_as_a_duplicate(fake, binance):
    binance.create_order("BTC/USDT", "limit", "buy", 0.5, 90, params={"clientOrderId": "lim-1"})

    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        binance.create_order("BTC/USDT", "limit", "buy", 0.5, 90, params={"clientOrderId": "lim-1"})

    assert len(fake.orders()) == 1
    assert fake.balance("USDT") == (Decimal(955), Decimal(45))


def test_a_client_order_id_is_free_again_once_its_order_is_filled_as_on_binance(fake, binance):
    for _ in range(2):
        binance.create_order("BTC/USDT", "market", "buy", 0.1, params={"clientOrderId": "resent"})

    assert [o["clientOrderId"] for o in fake.orders()] == ["resent", "resent"]  # why an order is never resent


def test_an_order_is_fetched_by_its_client_order_id(fake, binance):
    placed = binance.create_order("BTC/USDT", "market", "buy", 0.2, params={"clientOrderId": "buy-2"})

    found = binance.fetch_order(None, "BTC/USDT", params={"origClientOrderId": "buy-2"})

    assert (found["id"], found["clientOrderId"], found["status"]) == (placed["id"], "buy-2", "closed")
    assert found["filled"] == 0.2
    assert fake.requests("GET /api/v3/order")[0].params["origClientOrderId"] == "buy-2"


def test_an_unknown_client_order_id_is_order_not_found(binance):
    with pytest.raises(ccxt.OrderNotFound, match="Order does not exist"):
        binance.fetch_order(None, "BTC/USDT", params={"origClientOrderId": "never-sent"})


def test_an_order_accepted_but_answered_after_the_timeout_is_found_by_its_client_order_id(fake, binance):
    fake.script(ORDER, Fault.accept_then_delay(3.0))

    with pytest.raises(ccxt.RequestTimeout):
        binance.create_order("BTC/USDT", "market", "buy", 0.3, params={"clientOrderId": "late-1"})
    found = binance.fetch_order(None, "BTC/USDT", params={"origClientOrderId": "late-1"})

    assert (found["status"], found["filled"]) == ("closed", 0.3)
    assert len(fake.requests(ORDER)) == 1
    assert [o["clientOrderId"] for o in fake.orders()] == ["late-1"]


@pytest.mark.parametrize(("accepted", "orders"), [(True, 1), (False, 0)])
def test_binance_unknown_outcome_error_reaches_ccxt_as_a_timeout_whatever_happened(
    fake, binance, accepted, orders
):
    fake.script(ORDER, Fault.unknown_outcome(accepted=accepted))

    with pytest.raises(ccxt.RequestTimeout, match="-1007"):
        binance.create_order("BTC/USDT", "market", "buy", 0.1, params={"clientOrderId": "maybe"})

    assert len(fake.orders()) == orders


def test_a_limit_order_rests_with_its_funds_locked_until_it_is_filled(fake, binance):
    placed = binance.create_order("BTC/USDT", "limit", "buy", 0.5, 100, params={"clientOrderId": "rest-1"})

    assert placed["status"] == "open"
    assert [o["id"] for o in binance.fetch_open_orders("BTC/USDT")] == [placed["id"]]
    assert binance.fetch_balance()["USDT"] == {"free": 950.0, "used": 50.0, "total": 1000.0}

    fake.fill_order(client_order_id="rest-1")

    filled = binance.fetch_order(placed["id"], "BTC/USDT")
    assert (filled["status"], filled["filled"], filled["average"]) == ("closed", 0.5, 100.0)
    assert binance.fetch_open_orders("BTC/USDT") == []
    assert fake.balance("USDT") == (Decimal(950), 0)
    assert binance.fetch_my_trades("BTC/USDT")[0]["takerOrMaker"] == "maker"


def test_a_partial_fill_leaves_the_rest_open_and_locked(fake, binance):
    placed = binance.create_order("BTC/USDT", "limit", "buy", 0.5, 100)

    fake.fill_order(order_id=int(placed["id"]), quantity="0.2")

    order = binance.fetch_order(placed["id"], "BTC/USDT")
    assert (order["status"], order["info"]["status"], order["filled"]) == ("open", "PARTIALLY_FILLED", 0.2)
    assert fake.balance("USDT") == (Decimal(950), Decimal(30))


def test_a_limit_order_that_crosses_the_last_price_fills_at_once_at_that_price(fake, binance):
    order = binance.create_order("BTC/USDT", "limit", "buy", 0.5, 110)

    assert (order["status"], order["average"]) == ("closed", float(LAST_CLOSE))
    assert fake.balance("USDT") == (Decimal(1000) - Decimal("0.5") * LAST_CLOSE, 0)


def test_cancel_gives_back_the_locked_funds_and_a_second_cancel_finds_nothing(fake, binance):
    placed = binance.create_order("BTC/USDT", "limit", "buy", 0.5, 100, params={"clientOrderId": "c-1"})

    canceled = binance.cancel_order(placed["id"], "BTC/USDT")

    assert canceled["status"] == "canceled"
    assert canceled["info"]["origClientOrderId"] == "c-1"
    assert fake.balance("USDT") == (Decimal(1000), 0)
    with pytest.raises(ccxt.OrderNotFound, match="Unknown order sent"):
        binance.cancel_order(placed["id"], "BTC/USDT")


def test_a_stop_loss_limit_order_rests_untriggered_until_the_test_fills_it(fake, binance):
    fake.set_balance("BTC", "1")

    placed = binance.create_order("BTC/USDT", "limit", "sell", 0.1, 90, params={"stopLossPrice": 95})

    [stored] = fake.orders()
    assert (stored["type"], stored["status"], stored["stopPrice"]) == (
        "STOP_LOSS_LIMIT",
        "NEW",
        "95.00000000",
    )
    assert fake.balance("BTC") == (Decimal("0.9"), Decimal("0.1"))
    fake.fill_order(order_id=int(placed["id"]))
    assert fake.balance("USDT") == (Decimal(1000) + Decimal(9) - Decimal("0.009"), 0)


def test_an_order_below_the_minimum_notional_is_refused_by_the_filter(fake, binance):
    with pytest.raises(ccxt.BadRequest, match="Filter failure: NOTIONAL"):
        binance.create_order("BTC/USDT", "limit", "buy", 0.01, 100)

    assert fake.orders() == []


def test_a_quantity_off_the_lot_size_grid_is_refused(fake):
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": "100"}

    status, body = raw_request(fake, "POST", "/api/v3/order", {**params, "quantity": "0.100005"})

    assert (status, body) == (400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"})


def test_a_price_off_the_tick_grid_is_refused(fake):
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1"}

    status, body = raw_request(fake, "POST", "/api/v3/order", {**params, "price": "100.005"})

    assert (status, body) == (400, {"code": -1013, "msg": "Filter failure: PRICE_FILTER"})


def test_signed_endpoints_refuse_a_request_without_an_api_key(fake):
    status, body = raw_request(fake, "GET", "/api/v3/account", {}, key=None)

    assert (status, body["code"]) == (401, -2014)


def test_ccxt_sends_a_market_buy_given_a_price_as_a_quote_amount(fake, binance):
    order = binance.create_order("BTC/USDT", "market", "buy", 0.5, 100)

    sent = fake.requests(ORDER)[0].params
    assert "quantity" not in sent
    assert sent["quoteOrderQty"] == "50"
    assert order["filled"] == pytest.approx(0.48899)  # 50 USDT at 102.25, down to the 0.00001 step
