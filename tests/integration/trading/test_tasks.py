"""The trading tasks: their names and queue, what each one does, and a live order through a real worker."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.trading.models import IdempotencyKey, Order, OrderStatus, PortfolioSnapshot
from apps.trading.services.orders import order_place
from tests.integration.worker import running_worker
from workers import trading as tasks
from workers.celery import app, queue_for

D = Decimal
ORDER = "POST /api/v3/order"


def test_every_trading_task_is_named_trading_and_runs_on_the_orders_queue():
    names = [name for name in app.tasks if name.startswith("trading.")]

    assert set(names) >= {
        "trading.order_submit", "trading.orders_reconcile_all", "trading.account_reconcile",
        "trading.paper_orders_match", "trading.orchestrator_run", "trading.portfolio_snapshot_all",
        "trading.performance_record_all", "trading.idempotency_keys_prune",
    }  # fmt: skip
    assert {queue_for(name) for name in names} == {"orders"}


def test_reconciling_an_account_submits_the_live_orders_whose_message_was_lost(
    live_account, fake_exchange, monkeypatch
):
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    lost = order_place(
        created_by="test",
        account=live_account,
        symbol="BTCUSDT",
        side="BUY",
        type="MARKET",
        quantity=D("0.1"),
    ).order

    tasks.orders_reconcile_all()

    lost.refresh_from_db()
    assert lost.status == OrderStatus.FILLED
    assert len(fake_exchange.requests(ORDER)) == 1


def test_the_snapshot_task_snapshots_every_account(paper_account, make_account, btcusdt):
    make_account(name="Second")

    tasks.portfolio_snapshot_all()

    assert PortfolioSnapshot.objects.count() == 2


def test_old_idempotency_keys_are_forgotten(api_client, paper_account, btcusdt, settings):
    api_client.post(
        "/api/trading/trades",
        {"symbol": "BTCUSDT", "side": "BUY", "quantity": "1", "type": "MARKET"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="old",
    )
    IdempotencyKey.objects.update(
        created_at=timezone.now() - timedelta(hours=settings.TRADING_IDEMPOTENCY_KEY_TTL_HOURS + 1)
    )

    tasks.idempotency_keys_prune()

    assert not IdempotencyKey.objects.exists() and Order.objects.count() == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_live_order_placed_through_the_api_is_sent_once_by_a_real_worker(
    api_client, live_account, fake_exchange, monkeypatch, tmp_path
):
    # The worker process reads its settings from the environment.
    monkeypatch.setenv("LIVE_TRADING_ENABLED", "true")
    monkeypatch.setenv("CCXT_URLS_OVERRIDE", f"binance={fake_exchange.base_url}")
    monkeypatch.setenv("CCXT_TIMEOUT_MS", "2000")
    body = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "quantity": "0.5",
        "type": "MARKET",
        "account": live_account.pk,
    }

    with running_worker(tmp_path / "worker.log"):
        placed = api_client.post("/api/trading/trades", body, format="json").json()
        order = _wait_for_final(placed["id"])
        tasks.order_submit.delay(order.pk)  # a redelivered message
        later = order_place(
            created_by="test",
            account=live_account,
            symbol="BTCUSDT",
            side="BUY",
            type="MARKET",
            quantity=D("0.1"),
        ).order
        tasks.order_submit.delay(later.pk)  # consumed only after the redelivery, by the solo worker
        _wait_for_final(later.pk)

    assert placed["status"] == "NEW" and order.status == OrderStatus.FILLED
    assert [r.params["newClientOrderId"] for r in fake_exchange.requests(ORDER)] == [
        order.client_order_id,
        later.client_order_id,
    ]


def _wait_for_final(order_id: int, timeout: float = 30) -> Order:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order = Order.objects.get(pk=order_id)
        if order.status in (OrderStatus.FILLED, OrderStatus.REJECTED):
            return order
        time.sleep(0.1)
    raise AssertionError(f"order {order_id} still {order.status} after {timeout}s")
