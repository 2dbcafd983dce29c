"""The risk manager against the ledger: limits that depend on the account's orders, positions and
losses, every refusal recorded, and the trading state moved by the loss limits."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.core import clock
from apps.trading.models import AccountStateChange, Order, OrderStatus, RiskRefusal
from apps.trading.services.accounts import account_resume
from apps.trading.services.orders import order_cancel, order_place
from apps.trading.services.snapshots import portfolio_snapshot

from .conftest import hour

D = Decimal


def place(account, **order):
    defaults = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": D(1), "created_by": "test"}
    return order_place(account=account, **{**defaults, **order})


def code(placement) -> str | None:
    return placement.refusal.code if placement.refusal else None


def limit(account, **limits) -> None:
    """Set limits as the admin would, without writing back a stale balance."""
    type(account).objects.filter(pk=account.pk).update(**limits)
    account.refresh_from_db()


@pytest.mark.parametrize(
    ("limits", "refused", "accepted", "expected"),
    [
        ({"max_order_notional": D(150)}, {"quantity": D(2)}, {"quantity": D(1)}, "max_order_notional"),
        ({"max_position_notional": D(250)}, {"quantity": D(3)}, {"quantity": D(2)}, "max_position_notional"),
        ({"max_position_pct": D("0.02")}, {"quantity": D(2)}, {"quantity": D(1)}, "max_position_pct"),
        ({"max_exposure_pct": D("0.015")}, {"quantity": D(2)}, {"quantity": D(1)}, "max_exposure_pct"),
        (
            {"price_band_pct": D("0.05")},
            {"type": "LIMIT", "price": D(97)},
            {"type": "LIMIT", "price": D(98)},
            "price_band",
        ),
    ],
)
def test_each_limit_refuses_what_breaks_it_and_accepts_what_does_not(
    paper_account, btcusdt, limits, refused, accepted, expected
):
    limit(paper_account, **limits)

    assert code(place(paper_account, **refused)) == expected
    assert code(place(paper_account, **accepted)) is None


def test_the_exchange_minimums_of_the_instrument_are_enforced(paper_account, btcusdt):
    assert code(place(paper_account, quantity=D("0.04"))) == "min_notional"  # 4.09 USDT < 5
    assert code(place(paper_account, quantity=D("0.05"))) is None


def test_open_orders_are_limited_and_a_canceled_one_frees_its_place(paper_account, btcusdt):
    limit(paper_account, max_open_orders=2)
    resting = [place(paper_account, type="LIMIT", price=D(100)).order for _ in range(2)]

    assert code(place(paper_account, type="LIMIT", price=D(100))) == "max_open_orders"
    order_cancel(order=resting[0])
    assert code(place(paper_account, type="LIMIT", price=D(100))) is None


def test_the_order_rate_counts_accepted_orders_of_the_last_minute(paper_account, btcusdt):
    limit(paper_account, max_orders_per_minute=2)
    place(paper_account, quantity=D(10_000))  # refused for funds: does not count
    place(paper_account)
    place(paper_account)

    assert code(place(paper_account)) == "order_rate"
    Order.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    assert code(place(paper_account)) is None


def test_open_positions_are_limited(paper_account, btcusdt, make_account):
    from apps.market.services.instruments import instrument_get_or_create
    from tests.unit.market_providers.conftest import hourly_rows

    from .conftest import store_candles

    eth = instrument_get_or_create(symbol="ETHUSDT", exchange="binance")
    store_candles(eth, hourly_rows(5))
    limit(paper_account, max_open_positions=1)
    place(paper_account)

    assert code(place(paper_account, symbol="ETHUSDT")) == "max_open_positions"
    assert code(place(paper_account)) is None  # adding to the open position opens none


def test_a_daily_loss_beyond_the_limit_allows_only_orders_that_reduce_risk_until_the_next_day(
    paper_account, btcusdt
):
    place(paper_account, quantity=D(2))
    limit(
        paper_account, max_daily_loss_pct=D("0.1"), day_start_equity=D(12000), day_start=timezone.now().date()
    )

    buy = place(paper_account)
    sell = place(paper_account, side="SELL")

    paper_account.refresh_from_db()
    assert (code(buy), code(sell), paper_account.trading_state) == ("reducing_only", None, "reducing")
    change = AccountStateChange.objects.get()
    assert (change.previous, change.state) == ("active", "reducing") and "max_daily_loss_pct" in change.reason
    portfolio_snapshot(account=paper_account, now=timezone.now() + timedelta(days=1))
    paper_account.refresh_from_db()
    assert paper_account.trading_state == "active"


def test_the_daily_loss_limit_s_day_is_the_market_clock_s_so_a_replay_keeps_one_day(paper_account, btcusdt):
    moment = hour(5)  # the close of the newest candle, years before the wall clock's day
    with clock.replaying(moment):
        place(paper_account)
        portfolio_snapshot(account=paper_account, now=moment)
        start_equity = type(paper_account).objects.get(pk=paper_account.pk).day_start_equity
        place(paper_account, side="SELL")

    paper_account.refresh_from_db()
    assert (paper_account.day_start, paper_account.day_start_equity) == (moment.date(), start_equity)


def test_a_drawdown_beyond_the_limit_halts_everything_until_a_person_resumes(
    paper_account, btcusdt, staff_user
):
    place(paper_account, quantity=D(2))
    limit(paper_account, max_drawdown_pct=D("0.3"), peak_equity=D(20000))

    sell = place(paper_account, side="SELL")

    paper_account.refresh_from_db()
    assert (code(sell), paper_account.trading_state) == ("trading_halted", "halted")
    account_resume(account=paper_account, by=staff_user)
    paper_account.refresh_from_db()
    assert paper_account.trading_state == "active" and paper_account.peak_equity < 10000
    assert code(place(paper_account, side="SELL")) is None
    assert [c.state for c in AccountStateChange.objects.order_by("created_at")] == ["halted", "active"]


def test_every_refusal_is_recorded_with_the_refused_order_and_nothing_else_changes(paper_account, btcusdt):
    limit(paper_account, max_order_notional=D(50))
    cash = paper_account.cash

    refused = [place(paper_account, quantity=D(q)) for q in ("1", "2")]

    assert RiskRefusal.objects.count() == 2
    assert {r.order.status for r in RiskRefusal.objects.all()} == {OrderStatus.REJECTED}
    assert [p.refusal.order_id for p in refused] == [p.order.pk for p in refused]
    paper_account.refresh_from_db()
    assert paper_account.cash == cash and not paper_account.positions.filter(quantity__gt=0).exists()
