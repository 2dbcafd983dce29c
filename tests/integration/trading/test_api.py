"""The trading API of the brief: placing, listing, cancelling orders; positions, portfolio, history."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from knox.models import AuthToken
from rest_framework.test import APIClient

from apps.trading.models import Fill, IdempotencyKey, Order, OrderStatus, Position, RiskRefusal
from apps.trading.services.snapshots import portfolio_snapshot

from .conftest import LAST_CLOSE

D = Decimal
TRADES = "/api/trading/trades"
BUY = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "2", "type": "MARKET"}


def place(client, body=None, **headers):
    return client.post(
        TRADES,
        body or BUY,
        format="json",
        **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()},
    )


def test_a_market_buy_fills_at_the_last_price_with_slippage_and_fee(api_client, paper_account, btcusdt):
    answer = place(api_client)

    assert answer.status_code == 201
    body = answer.json()
    price = D("102.25") * D("1.0005")  # the last close, moved by the account's slippage
    fee = (2 * price * D("0.001")).quantize(D("1e-8"))
    assert (body["status"], D(body["filled_quantity"]), D(body["average_price"])) == ("FILLED", 2, price)
    assert [D(f["fee"]) for f in body["fills"]] == [fee]
    paper_account.refresh_from_db()
    assert paper_account.cash == D(10000) - 2 * price - fee
    assert Position.objects.get(account=paper_account).quantity == 2


def test_a_limit_buy_below_the_market_rests_open(api_client, paper_account, btcusdt):
    body = {"symbol": "BTCUSDT", "side": "BUY", "quantity": 0.1, "price": 100, "type": "LIMIT"}

    answer = place(api_client, body)

    assert answer.status_code == 201
    assert (answer.json()["status"], answer.json()["fills"]) == ("OPEN", [])
    paper_account.refresh_from_db()
    assert paper_account.cash == 10000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BUY, "quantity": None}, "quantity"),
        ({**BUY, "quantity": "-1"}, "quantity"),
        ({**BUY, "quantity": "0.123456789"}, "quantity"),
        ({**BUY, "side": "HOLD"}, "side"),
        ({**BUY, "type": "ICEBERG"}, "type"),
        ({**BUY, "type": "LIMIT"}, "price"),
        ({**BUY, "type": "STOP_LOSS"}, "stop_price"),
        ({**BUY, "stop_price": "100"}, "stop_price"),
        ({**BUY, "symbol": "DOGEUSDT"}, "symbol"),
        ({**BUY, "quantity": "0.000001"}, "quantity"),
        ({**BUY, "client_order_id": "has spaces"}, "client_order_id"),
        ({**BUY, "account": 999}, "account"),
    ],
)
def test_a_malformed_order_is_a_400_naming_the_field_and_stores_nothing(
    api_client, paper_account, btcusdt, body, field
):
    answer = place(api_client, body)

    assert answer.status_code == 400
    assert field in answer.json()["error"]["fields"]
    assert not Order.objects.exists()


def test_an_order_the_risk_manager_refuses_is_a_422_with_the_limit_and_is_stored_rejected(
    api_client, paper_account, btcusdt
):
    paper_account.max_order_notional = D(100)
    paper_account.save()

    answer = place(api_client)

    assert answer.status_code == 422
    error = answer.json()["error"]
    assert (error["code"], error["limit"], error["limit_value"]) == (
        "max_order_notional",
        "max_order_notional",
        "100.00000000",
    )
    assert D(error["actual"]) == 2 * LAST_CLOSE
    order = Order.objects.get()
    assert (order.status, order.reject_code, error["order"]["id"]) == (
        OrderStatus.REJECTED,
        "max_order_notional",
        order.pk,
    )
    assert RiskRefusal.objects.get().order == order
    paper_account.refresh_from_db()
    assert paper_account.cash == 10000
    assert not Fill.objects.exists() and not Position.objects.filter(quantity__gt=0).exists()


def test_the_same_idempotency_key_returns_the_first_order_and_creates_nothing(
    api_client, paper_account, btcusdt
):
    first = place(api_client, **{"Idempotency-Key": "key-1"})
    again = place(api_client, **{"Idempotency-Key": "key-1"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1 and Fill.objects.count() == 1


def test_an_idempotency_key_reused_for_another_request_is_refused(api_client, paper_account, btcusdt):
    place(api_client, **{"Idempotency-Key": "key-2"})

    answer = place(api_client, {**BUY, "quantity": "3"}, **{"Idempotency-Key": "key-2"})

    assert (answer.status_code, answer.json()["error"]["code"]) == (422, "idempotency_key_reused")
    assert Order.objects.count() == 1


def test_a_refused_order_replays_as_the_same_refusal(api_client, paper_account, btcusdt):
    paper_account.max_order_notional = D(100)
    paper_account.save()

    codes = [place(api_client, **{"Idempotency-Key": "key-3"}).json()["error"]["code"] for _ in range(2)]

    assert codes == ["max_order_notional"] * 2
    assert Order.objects.count() == 1 and RiskRefusal.objects.count() == 1


def test_the_same_client_order_id_returns_the_first_order(api_client, paper_account, btcusdt):
    first = place(api_client, {**BUY, "client_order_id": "mine-1"})
    again = place(api_client, {**BUY, "client_order_id": "mine-1", "quantity": "5"})

    assert again.json()["id"] == first.json()["id"] and again.json()["quantity"] == "2.00000000"
    assert Order.objects.count() == 1


def test_idempotency_keys_are_per_user(api_client, paper_account, btcusdt, make_account):
    other = get_user_model().objects.create_user(username="other", password="x")
    _, token = AuthToken.objects.create(user=other)
    other_client = APIClient()
    other_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    mine = place(api_client, **{"Idempotency-Key": "shared"})
    theirs = place(other_client, **{"Idempotency-Key": "shared"})

    assert theirs.status_code == 201 and theirs.json()["id"] != mine.json()["id"]
    assert IdempotencyKey.objects.count() == 2


def test_trades_are_listed_newest_first_filtered_by_status_and_symbol_with_fills(
    api_client, paper_account, btcusdt
):
    place(api_client)
    place(api_client, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "1", "price": "100", "type": "LIMIT"})

    filled = api_client.get(TRADES, {"status": "FILLED", "symbol": "BTC/USDT", "limit": 100}).json()
    everything = api_client.get(TRADES).json()

    assert [o["status"] for o in everything["results"]] == ["OPEN", "FILLED"]
    assert filled["count"] == 1 and len(filled["results"][0]["fills"]) == 1
    assert api_client.get(TRADES, {"status": "SOMETIMES"}).status_code == 400


def test_a_trade_is_shown_with_its_fills_to_its_owner_only(api_client, paper_account, btcusdt, staff_user):
    order_id = place(api_client).json()["id"]
    _, token = AuthToken.objects.create(user=staff_user)
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    mine = api_client.get(f"{TRADES}/{order_id}")

    assert mine.status_code == 200 and len(mine.json()["fills"]) == 1
    assert stranger.get(f"{TRADES}/{order_id}").status_code == 404


def test_a_resting_order_is_canceled_and_a_second_cancel_conflicts(api_client, paper_account, btcusdt):
    order_id = place(api_client, {**BUY, "type": "LIMIT", "price": "100"}).json()["id"]

    canceled = api_client.post(f"{TRADES}/{order_id}/cancel")
    again = api_client.post(f"{TRADES}/{order_id}/cancel")

    assert (canceled.status_code, canceled.json()["status"]) == (200, "CANCELED")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_cancelable")


def test_positions_and_portfolio_value_what_is_held_at_the_last_price(api_client, paper_account, btcusdt):
    place(api_client)
    place(api_client, {**BUY, "side": "SELL", "quantity": "0.5"})

    [position] = api_client.get("/api/trading/positions").json()
    portfolio = api_client.get("/api/trading/portfolio").json()

    paper_account.refresh_from_db()
    assert (D(position["quantity"]), D(position["mark_price"])) == (D("1.5"), LAST_CLOSE)
    assert D(position["market_value"]) == D("1.5") * LAST_CLOSE
    assert D(portfolio["cash"]) == paper_account.cash
    assert D(portfolio["equity"]) == paper_account.cash + D("1.5") * LAST_CLOSE
    assert D(portfolio["total_pnl"]) == D(portfolio["equity"]) - 10000
    realised, unrealised = D(portfolio["realised_pnl"]), D(portfolio["unrealised_pnl"])
    assert realised + unrealised == D(portfolio["total_pnl"])  # the accounting identity
    assert D(portfolio["exposure"]) == (D("1.5") * LAST_CLOSE / D(portfolio["equity"])).quantize(
        D("0.000001")
    )
    assert portfolio["positions"][0]["symbol"] == "BTCUSDT"


def test_the_portfolio_history_lists_the_snapshots_oldest_first(api_client, paper_account, btcusdt):
    from datetime import UTC, datetime

    portfolio_snapshot(account=paper_account, now=datetime(2024, 2, 1, 12, 3, tzinfo=UTC))
    place(api_client)
    portfolio_snapshot(account=paper_account, now=datetime(2024, 2, 1, 12, 7, tzinfo=UTC))
    portfolio_snapshot(account=paper_account, now=datetime(2024, 2, 1, 12, 9, tzinfo=UTC))  # same slot

    history = api_client.get("/api/trading/portfolio/history").json()

    assert [s["time"] for s in history["results"]] == ["2024-02-01T12:00:00Z", "2024-02-01T12:05:00Z"]
    assert D(history["results"][0]["equity"]) == 10000 and D(history["results"][1]["cash"]) < 10000


def test_anonymous_requests_are_refused(anon_client, btcusdt):
    assert anon_client.get(TRADES).status_code == 401
    assert anon_client.post(TRADES, BUY, format="json").status_code == 401


def test_only_staff_can_halt_and_resume_and_a_halted_account_refuses_orders(
    api_client, paper_account, btcusdt, staff_user
):
    _, token = AuthToken.objects.create(user=staff_user)
    staff = APIClient()
    staff.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    halt = f"/api/trading/accounts/{paper_account.pk}/halt"

    assert api_client.post(halt).status_code == 403
    halted = staff.post(halt, {"reason": "incident 42"}, format="json")
    refused = place(api_client)
    resumed = staff.post(f"/api/trading/accounts/{paper_account.pk}/resume")

    assert (halted.status_code, halted.json()["trading_state"], halted.json()["state_reason"]) == (
        200,
        "halted",
        "incident 42",
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "trading_halted")
    assert resumed.json()["trading_state"] == "active"
    assert place(api_client).status_code == 201


def test_accounts_are_listed_without_their_exchange_keys(api_client, make_account):
    make_account(name="Keyed", api_key="visible-key-0001", secret="visible-secret-0001")

    answer = api_client.get("/api/trading/accounts")

    assert answer.json()["results"][0]["has_api_keys"] is True
    assert "visible" not in answer.content.decode() and "encrypted" not in answer.content.decode()
