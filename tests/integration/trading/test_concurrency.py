"""Many orders on one account at once: the ledger equals what the fills say, and no order is doubled;
first orders at once open one wallet account.

Real threads, each with its own database connection, released together by a barrier. On
PostgreSQL the account's row lock (SELECT ... FOR UPDATE) serialises them; SQLite has no row locks
but takes its write lock when a transaction begins (IMMEDIATE mode), which serialises them the same
way, so it runs a smaller variant of the same test.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from knox.models import AuthToken
from rest_framework.test import APIClient

from apps.trading.models import Account, Fill, IdempotencyKey, Order, OrderStatus, Position
from apps.trading.services.orders import order_place
from apps.trading.services.wallet import wallet_order_place

from .threads import run_together

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal


def test_orders_placed_at_once_leave_cash_and_positions_exactly_as_the_fills_say(paper_account, btcusdt):
    count = 50 if connection.vendor == "postgresql" else 12
    paper_account.cash = paper_account.starting_cash = D(count * 40)  # short of what all the buys need
    paper_account.save()
    buys = {i for i in range(count) if i % 3 != 2}

    def place(i: int) -> Order:
        side, quantity = ("BUY", D(1)) if i in buys else ("SELL", D("0.5"))
        return order_place(
            created_by="test",
            account=paper_account,
            symbol="BTCUSDT",
            side=side,
            type="MARKET",
            quantity=quantity,
        ).order

    results = run_together(count, place)

    assert not [r for r in results if isinstance(r, Exception)]
    orders = list(Order.objects.order_by("pk"))
    assert len(orders) == count
    assert {o.status for o in orders} <= {OrderStatus.FILLED, OrderStatus.REJECTED}
    paper_account.refresh_from_db()
    position = Position.objects.get(account=paper_account)
    fills = list(Fill.objects.all())
    bought = sum(f.quantity for f in fills if f.side == "BUY")
    sold = sum(f.quantity for f in fills if f.side == "SELL")
    spent = sum(f.quantity * f.price + f.fee for f in fills if f.side == "BUY")
    received = sum(f.quantity * f.price - f.fee for f in fills if f.side == "SELL")
    assert paper_account.cash == paper_account.starting_cash - spent + received
    assert position.quantity == bought - sold
    assert paper_account.cash >= 0 and position.quantity >= 0
    assert len(fills) == sum(o.status == OrderStatus.FILLED for o in orders)
    # The lock makes the orders one sequence (the order rows are created under it): replaying that
    # sequence must accept and refuse exactly the same orders, which a lost update would break.
    buy_fill = next(f for f in fills if f.side == "BUY")
    buy_cost = (
        buy_fill.quantity * buy_fill.price + buy_fill.fee
    )  # the price did not move: every buy costs this
    cash, held = paper_account.starting_cash, D(0)
    for order in orders:
        fill = order.fills.first()
        if order.side == "BUY":
            assert (order.status == OrderStatus.FILLED) == (cash >= buy_cost), (
                order.pk,
                cash,
                order.reject_code,
            )
            if fill:
                cash -= fill.quantity * fill.price + fill.fee
                held += fill.quantity
        else:
            assert (order.status == OrderStatus.FILLED) == (held >= D("0.5")), (
                order.pk,
                held,
                order.reject_code,
            )
            if fill:
                cash += fill.quantity * fill.price - fill.fee
                held -= fill.quantity
        assert cash >= 0
    assert (cash, held) == (paper_account.cash, position.quantity)
    assert any(o.reject_code == "insufficient_funds" for o in orders)  # the cash really ran out


def test_ten_identical_requests_with_one_idempotency_key_at_once_make_one_order(user, paper_account, btcusdt):
    _, token = AuthToken.objects.create(user=user)
    body = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "1", "type": "MARKET"}

    def post(i: int) -> tuple[int, int]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        answer = client.post("/api/trading/trades", body, format="json", HTTP_IDEMPOTENCY_KEY="once-only")
        return answer.status_code, answer.json()["id"]

    results = run_together(10, post)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert {status for status, _ in results} == {201}
    assert len({order_id for _, order_id in results}) == 1
    assert Order.objects.count() == 1 and Fill.objects.count() == 1 and IdempotencyKey.objects.count() == 1
    paper_account.refresh_from_db()
    assert paper_account.cash == D(10000) - Fill.objects.get().price - Fill.objects.get().fee


def test_first_orders_at_once_open_one_wallet_account_and_all_land_in_it(user, btcusdt):
    count = 8 if connection.vendor == "postgresql" else 4

    def place(i: int) -> Order:
        return wallet_order_place(
            user=user, created_by="test", symbol="BTCUSDT", side="BUY", type="MARKET", quantity=D(1)
        ).order

    results = run_together(count, place)

    assert not [r for r in results if isinstance(r, Exception)], results
    [account] = Account.objects.filter(owner=user)
    assert (account.name, account.quote_currency) == ("Paper USDT", "USDT")
    assert Order.objects.filter(account=account, status=OrderStatus.FILLED).count() == count
