"""The live path: the real ccxt client against a local fake Binance, through the services and tasks.

The fake records every request, so "exactly one exchange order" and "nothing reached the broker"
are read off its request log.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from apps.strategies.services.strategies import strategy_create
from apps.trading.models import (
    Account,
    Fill,
    Order,
    OrderStatus,
    Position,
    RepairKind,
    RiskRefusal,
    StrategyAllocation,
)
from apps.trading.services.accounts import account_halt
from apps.trading.services.orders import order_place
from apps.trading.services.reconciliation import account_reconcile
from tests.fakes.exchange import Fault
from workers.trading import order_submit

from .conftest import LAST_CLOSE

D = Decimal
ORDER = "POST /api/v3/order"
BUY = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.5", "type": "MARKET"}


def place(api_client, live_account, django_capture_on_commit_callbacks, **changes):
    """POST an order as the API does and run the submit task it enqueued after commit."""
    with django_capture_on_commit_callbacks() as enqueued:
        answer = api_client.post(
            "/api/trading/trades", {**BUY, "account": live_account.pk, **changes}, format="json"
        )
    assert answer.status_code == 201, answer.json()
    assert answer.json()["status"] == "NEW" and len(enqueued) == 1
    order_submit(answer.json()["id"])  # what the worker runs for the enqueued message
    return Order.objects.get(pk=answer.json()["id"])


def test_a_live_market_buy_is_placed_once_filled_and_booked(
    api_client, live_account, fake_exchange, django_capture_on_commit_callbacks
):
    order = place(api_client, live_account, django_capture_on_commit_callbacks)

    [sent] = fake_exchange.requests(ORDER)
    assert sent.params["newClientOrderId"] == order.client_order_id and sent.params["quantity"] == "0.5"
    assert (order.status, order.exchange_order_id, order.filled_quantity, order.average_price) == (
        OrderStatus.FILLED,
        fake_exchange.orders()[0]["orderId"].__str__(),
        D("0.5"),
        LAST_CLOSE,
    )
    fill = Fill.objects.get(order=order)
    assert (fill.trade_id, fill.fee, fill.fee_currency) == ("5000001", D("0.0005"), "BTC")
    live_account.refresh_from_db()
    assert live_account.cash == D(1000) - D("0.5") * LAST_CLOSE
    assert Position.objects.get(account=live_account).quantity == D("0.4995")  # the fee was taken in BTC
    assert fake_exchange.balance("BTC")[0] == D("0.4995")


def test_a_redelivered_submit_task_sends_nothing(
    api_client, live_account, fake_exchange, django_capture_on_commit_callbacks
):
    order = place(api_client, live_account, django_capture_on_commit_callbacks)

    order_submit(order.pk)

    assert len(fake_exchange.requests(ORDER)) == 1


def test_insufficient_funds_rejects_the_order_with_the_code_and_changes_nothing(
    api_client, live_account, fake_exchange, django_capture_on_commit_callbacks
):
    order = place(api_client, live_account, django_capture_on_commit_callbacks, quantity="50")

    assert (order.status, order.reject_code) == (OrderStatus.REJECTED, "insufficient_funds")
    assert "insufficient balance" in order.reject_reason
    live_account.refresh_from_db()
    assert live_account.cash == 1000 and not Fill.objects.exists()
    assert fake_exchange.orders() == []


def test_a_timeout_after_the_exchange_accepted_is_resolved_by_client_order_id_never_resent(
    api_client, live_account, fake_exchange, django_capture_on_commit_callbacks
):
    fake_exchange.script(ORDER, Fault.accept_then_delay(3.0))

    order = place(api_client, live_account, django_capture_on_commit_callbacks)

    assert len(fake_exchange.requests(ORDER)) == 1
    lookup = fake_exchange.requests("GET /api/v3/order")
    assert [r.params["origClientOrderId"] for r in lookup] == [order.client_order_id]
    assert [o["clientOrderId"] for o in fake_exchange.orders()] == [order.client_order_id]
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, D("0.5"))
    assert Fill.objects.filter(order=order).count() == 1


def test_an_unknown_outcome_the_exchange_never_saw_stays_unknown_then_is_rejected_never_resent(
    api_client, live_account, fake_exchange, django_capture_on_commit_callbacks, settings
):
    fake_exchange.script(ORDER, Fault.unknown_outcome(accepted=False))

    order = place(api_client, live_account, django_capture_on_commit_callbacks)
    assert order.status == OrderStatus.UNKNOWN
    account_reconcile(account=live_account)  # within the grace period: still unknown
    order.refresh_from_db()
    assert order.status == OrderStatus.UNKNOWN

    later = timezone.now() + timedelta(seconds=settings.TRADING_UNKNOWN_ORDER_GRACE_SECONDS + 1)
    run = account_reconcile(account=live_account, now=later)

    order.refresh_from_db()
    assert (order.status, order.reject_code) == (OrderStatus.REJECTED, "not_placed")
    assert len(fake_exchange.requests(ORDER)) == 1 and fake_exchange.orders() == []
    assert [r.kind for r in run.repairs.all()] == [RepairKind.ORDER_RESOLVED]


def test_reconciliation_repairs_what_changed_on_the_exchange_while_the_system_was_down(
    api_client, live_account, fake_exchange, django_capture_on_commit_callbacks
):
    resting = place(api_client, live_account, django_capture_on_commit_callbacks, type="LIMIT", price="100")
    doomed = place(api_client, live_account, django_capture_on_commit_callbacks, type="LIMIT", price="99")
    fake_exchange.script(ORDER, Fault.unknown_outcome(accepted=True))
    lost = place(api_client, live_account, django_capture_on_commit_callbacks, quantity="0.1")
    assert [o.status for o in (resting, doomed, lost)] == [
        OrderStatus.OPEN,
        OrderStatus.OPEN,
        OrderStatus.FILLED,
    ]

    # While the system is down: one order fills, another is canceled by hand, a third is placed by hand,
    # and USDT is deposited.
    fake_exchange.fill_order(client_order_id=resting.client_order_id)
    _exchange_request(
        fake_exchange, "DELETE", {"symbol": "BTCUSDT", "origClientOrderId": doomed.client_order_id}
    )
    _exchange_request(
        fake_exchange,
        "POST",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.2",
            "price": "90",
            "newClientOrderId": "by-hand",
        },
    )
    usdt_free, _ = fake_exchange.balance("USDT")
    fake_exchange.set_balance("USDT", usdt_free + 250)

    run = account_reconcile(account=live_account)

    resting.refresh_from_db(), doomed.refresh_from_db()
    assert (resting.status, resting.filled_quantity, doomed.status) == (
        OrderStatus.FILLED,
        D("0.5"),
        OrderStatus.CANCELED,
    )
    imported = Order.objects.get(account=live_account, client_order_id="by-hand")
    assert (imported.status, imported.source, imported.price) == (OrderStatus.OPEN, "exchange", D(90))
    live_account.refresh_from_db()
    usdt_free, usdt_locked = fake_exchange.balance("USDT")
    assert live_account.cash == usdt_free + usdt_locked
    assert Position.objects.get(account=live_account).quantity == sum(fake_exchange.balance("BTC"))
    kinds = sorted(r.kind for r in run.repairs.all())
    assert kinds == sorted(
        [
            RepairKind.FILL_ADDED,
            RepairKind.ORDER_STATUS,
            RepairKind.ORDER_STATUS,
            RepairKind.ORDER_IMPORTED,
            RepairKind.CASH,
        ]
    )
    assert run.summary["repairs"] == 5

    again = account_reconcile(account=live_account)

    assert again.repairs.count() == 0  # nothing left to repair: reconciliation is idempotent
    assert Fill.objects.filter(order=resting).count() == 1


def _exchange_request(fake_exchange, method: str, params: dict) -> None:
    """A change made on the exchange's own website, not through the system."""
    import json
    import urllib.parse
    import urllib.request

    body = urllib.parse.urlencode({**params, "timestamp": "1", "signature": "any"}).encode()
    request = urllib.request.Request(fake_exchange.base_url + "/api/v3/order", data=body, method=method)
    request.add_header("X-MBX-APIKEY", "web")
    with urllib.request.urlopen(request, timeout=2) as answer:
        json.loads(answer.read())


def test_a_halted_account_sends_nothing_to_the_exchange(
    api_client, live_account, fake_exchange, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        waiting = api_client.post(
            "/api/trading/trades", {**BUY, "account": live_account.pk}, format="json"
        ).json()
    account_halt(account=live_account, by=None, reason="kill switch test")

    order_submit(waiting["id"])  # the task for the order placed just before the halt
    refused = api_client.post("/api/trading/trades", {**BUY, "account": live_account.pk}, format="json")

    assert Order.objects.get(pk=waiting["id"]).reject_code == "trading_halted"
    assert RiskRefusal.objects.filter(order_id=waiting["id"], code="trading_halted").exists()
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "trading_halted")
    assert fake_exchange.requests(ORDER) == []


def test_live_orders_are_refused_unless_live_trading_is_enabled(
    api_client, live_account, fake_exchange, settings
):
    settings.LIVE_TRADING_ENABLED = False

    refused = api_client.post("/api/trading/trades", {**BUY, "account": live_account.pk}, format="json")

    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "live_trading_disabled")
    assert fake_exchange.requests() == []


def test_a_live_order_resting_on_the_exchange_is_canceled_there(
    api_client, live_account, fake_exchange, django_capture_on_commit_callbacks
):
    order = place(api_client, live_account, django_capture_on_commit_callbacks, type="LIMIT", price="100")

    answer = api_client.post(f"/api/trading/trades/{order.pk}/cancel")

    assert (answer.status_code, answer.json()["status"]) == (200, "CANCELED")
    assert fake_exchange.orders()[0]["status"] == "CANCELED"
    assert fake_exchange.balance("USDT") == (D(1000), 0)


def test_exchange_keys_are_encrypted_at_rest_and_never_logged(
    api_client, live_account, fake_exchange, django_capture_on_commit_callbacks, caplog
):
    caplog.set_level(logging.DEBUG)
    fake_exchange.script(ORDER, Fault.unknown_outcome(accepted=True))

    place(api_client, live_account, django_capture_on_commit_callbacks)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_key_encrypted, api_secret_encrypted FROM trading_account WHERE id = %s",
            [live_account.pk],
        )
        stored = " ".join(cursor.fetchone())
    assert "live-api-key-123" not in stored and "live-secret-456" not in stored
    assert Account.objects.get(pk=live_account.pk).api_keys() == ("live-api-key-123", "live-secret-456")
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "outcome unknown" in logged  # the log was captured, and
    assert "live-api-key-123" not in logged and "live-secret-456" not in logged
    assert fake_exchange.requests(ORDER)[0].headers["x-mbx-apikey"] == "live-api-key-123"


def test_a_filled_live_entry_is_protected_by_a_stop_loss_on_the_exchange(
    live_account, fake_exchange, monkeypatch
):
    from workers.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)  # the follow-up task runs inline
    entry = order_place(
        created_by="test",
        account=live_account, symbol="BTCUSDT", side="BUY", type="MARKET", quantity=D("0.5"),
        attach_stop_loss_pct=D("0.02"), attach_take_profit_pct=D("0.05"),
    ).order  # fmt: skip

    order_submit(entry.pk)

    [stop] = Order.objects.filter(parent=entry)  # no take-profit: Binance would need an OCO order list
    assert (stop.type, stop.status, stop.quantity) == ("STOP_LOSS", OrderStatus.OPEN, D("0.4995"))
    sent = fake_exchange.requests(ORDER)[-1].params
    assert (sent["type"], sent["stopPrice"], sent["quantity"]) == (
        "STOP_LOSS",
        str(stop.stop_price.normalize()),
        "0.4995",
    )
    assert stop.stop_price == (LAST_CLOSE * D("0.98")).quantize(D("0.01"))


def test_reconciliation_fits_the_books_to_the_exchange_taking_from_the_manual_book_first(
    live_account, btcusdt, fake_exchange
):
    strategy = strategy_create(
        name="Live book",
        type="custom",
        instrument=btcusdt,
        timeframe="1h",
        parameters={},
        indicators=[],
        rules=[{"condition": "close > 0", "action": "buy", "priority": 1}],
    )
    allocation = StrategyAllocation.objects.create(account=live_account, strategy=strategy)
    Position.objects.create(
        account=live_account, instrument=btcusdt, allocation=allocation, quantity=D("0.5"), cost_basis=D(50)
    )
    Position.objects.create(account=live_account, instrument=btcusdt, quantity=D("0.1"), cost_basis=D(10))

    fake_exchange.set_balance("BTC", "0.4")  # 0.2 less than the books hold
    account_reconcile(account=live_account)

    books = dict(Position.objects.filter(account=live_account).values_list("allocation", "quantity"))
    assert books == {
        None: D(0),
        allocation.pk: D("0.4"),
    }  # the manual 0.1 went first, then 0.1 of the strategy's

    fake_exchange.set_balance("BTC", "0.7")  # bought by hand on the exchange: the manual book's
    account_reconcile(account=live_account)

    books = dict(Position.objects.filter(account=live_account).values_list("allocation", "quantity"))
    assert books == {None: D("0.3"), allocation.pk: D("0.4")}
