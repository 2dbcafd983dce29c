"""The admin pages and the management commands of the trading app."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from apps.trading.models import Account, Order, OrderStatus, Repair
from apps.trading.services.orders import order_place
from apps.trading.services.snapshots import portfolio_snapshot

D = Decimal


@pytest.fixture
def admin_client(client, db):
    admin = get_user_model().objects.create_superuser(username="admin", password="pw", email="a@example.com")
    client.force_login(admin)
    return client


def test_the_admin_pages_of_the_trading_app_open(admin_client, paper_account, btcusdt):
    order_place(
        account=paper_account, created_by="test", symbol="BTCUSDT", side="BUY", type="MARKET", quantity=D(1)
    )
    pages = [
        "account",
        "order",
        "fill",
        "position",
        "portfoliosnapshot",
        "riskrefusal",
        "reconciliation",
        "strategyallocation",
    ]

    for page in pages:
        assert admin_client.get(f"/admin/trading/{page}/").status_code == 200, page
    assert admin_client.get(f"/admin/trading/order/{Order.objects.get().pk}/change/").status_code == 200


def test_the_account_page_never_shows_the_keys_and_draws_the_equity(admin_client, make_account, btcusdt):
    from datetime import UTC, datetime

    account = make_account(name="Keyed", api_key="shown-nowhere-key", secret="shown-nowhere-secret")
    for minute in (0, 5, 10):
        portfolio_snapshot(account=account, now=datetime(2024, 3, 1, 12, minute, tzinfo=UTC))

    page = admin_client.get(f"/admin/trading/account/{account.pk}/change/").content.decode()

    assert "shown-nowhere" not in page and account.api_key_encrypted not in page
    assert "<polyline" in page and "3 snapshots" in page


def test_editing_limits_in_the_admin_changes_only_the_limits(admin_client, paper_account, btcusdt):
    page = admin_client.get(f"/admin/trading/account/{paper_account.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form[name].value() if form[name].value() is not None else "" for name in form.fields}
    order_place(
        created_by="test", account=paper_account, symbol="BTCUSDT", side="BUY", type="MARKET", quantity=D(1)
    )  # cash moves

    answer = admin_client.post(
        f"/admin/trading/account/{paper_account.pk}/change/",
        {**data, "max_order_notional": "500", "api_key": ""},
    )

    assert answer.status_code == 302
    account = Account.objects.get(pk=paper_account.pk)
    assert account.max_order_notional == 500
    assert account.cash < 10000  # the fill made while the form was open was not written over


def test_the_halt_action_halts_and_the_cancel_action_cancels(admin_client, paper_account, btcusdt):
    order = order_place(
        created_by="test",
        account=paper_account,
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        quantity=D(1),
        price=D(100),
    ).order

    admin_client.post("/admin/trading/order/", {"action": "cancel", "_selected_action": [order.pk]})
    admin_client.post("/admin/trading/account/", {"action": "halt", "_selected_action": [paper_account.pk]})

    order.refresh_from_db(), paper_account.refresh_from_db()
    assert (order.status, paper_account.trading_state) == (OrderStatus.CANCELED, "halted")


def test_place_order_places_through_the_risk_manager_and_prints_the_outcome(paper_account, btcusdt):
    out = StringIO()

    call_command(
        "place_order",
        "--account",
        paper_account.pk,
        "--symbol",
        "BTCUSDT",
        "--side",
        "buy",
        "--type",
        "market",
        "--quantity",
        "0.5",
        stdout=out,
    )

    assert "BUY 0.50000000 BTCUSDT MARKET -> FILLED" in out.getvalue()
    assert Order.objects.get().source == "command"


def test_place_order_for_a_user_opens_their_wallet_account_on_the_first_order(user, btcusdt):
    out = StringIO()
    order = ("--symbol", "BTCUSDT", "--side", "BUY", "--type", "MARKET", "--quantity", "0.5")

    call_command("place_order", "--user", user.username, *order, stdout=out)
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("place_order", "--user", "nobody", *order)

    account = Account.objects.get(owner=user)
    assert (account.name, account.quote_currency, account.orders.count()) == ("Paper USDT", "USDT", 1)
    assert "-> FILLED" in out.getvalue() and f"on account {account.pk} (Paper USDT)" in out.getvalue()


def test_place_order_fails_with_the_refusal(paper_account, btcusdt):
    paper_account.max_order_notional = D(10)
    paper_account.save()

    with pytest.raises(CommandError, match="refused: max_order_notional"):
        call_command(
            "place_order",
            "--account",
            paper_account.pk,
            "--symbol",
            "BTCUSDT",
            "--side",
            "BUY",
            "--type",
            "MARKET",
            "--quantity",
            "1",
        )


def test_place_order_sends_a_live_order_at_once(live_account, fake_exchange):
    out = StringIO()

    call_command(
        "place_order",
        "--account",
        live_account.pk,
        "--symbol",
        "BTCUSDT",
        "--side",
        "BUY",
        "--type",
        "MARKET",
        "--quantity",
        "0.2",
        stdout=out,
    )

    assert "-> FILLED" in out.getvalue()
    assert len(fake_exchange.requests("POST /api/v3/order")) == 1


def test_reconcile_orders_prints_every_repair(live_account, fake_exchange):
    fake_exchange.set_balance("USDT", "1500")
    out = StringIO()

    call_command("reconcile_orders", stdout=out)

    assert "Live: 1 repair(s)" in out.getvalue() and "cash 1000.00000000 -> 1500" in out.getvalue()
    assert Repair.objects.get().kind == "cash"


def test_portfolio_prints_the_figures_and_positions(paper_account, btcusdt):
    order_place(
        account=paper_account, created_by="test", symbol="BTCUSDT", side="BUY", type="MARKET", quantity=D(1)
    )
    out = StringIO()

    call_command("portfolio", "--account", paper_account.pk, stdout=out)

    text = out.getvalue()
    assert "equity" in text and "BTCUSDT" in text and "last 102.25" in text
