"""Strategies sharing an account and an instrument each trade their own book: one's exit sells only
its own position and cancels only its own stop and target; one's holding never blocks another's
entry; each allocation's P&L is the sum of its own fills; the account is the sum of its books."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from apps.strategies.models import StrategyStatus
from apps.strategies.services.strategies import strategy_update
from apps.trading import orchestrator, performance, selectors
from apps.trading.models import Fill, Order, OrderSource, OrderStatus, Position, StrategyAllocation
from apps.trading.services.orders import order_place
from tests.integration.active_strategies import strategy_create_as
from tests.unit.market_providers.conftest import hourly_rows

from .conftest import hour, store_candles
from .test_orchestrator import ALWAYS_BUY, ALWAYS_SELL, NOW, PARAMETERS

pytestmark = pytest.mark.django_db
D = Decimal


def _allocate(account, instrument, name: str, share: str = "0.4") -> StrategyAllocation:
    strategy = strategy_create_as(
        name=name,
        type="custom",
        instrument=instrument,
        timeframe="1h",
        parameters=PARAMETERS,
        indicators=[],
        rules=ALWAYS_BUY,
        status=StrategyStatus.ACTIVE,
    )
    return StrategyAllocation.objects.create(account=account, strategy=strategy, capital_pct=D(share))


@pytest.fixture
def shared(paper_account, btcusdt):
    paper_account.auto_trading = True
    paper_account.save()
    manual = order_place(
        created_by="test",
        account=paper_account,
        instrument=btcusdt,
        side="BUY",
        type="MARKET",
        quantity=D("0.1"),
    )
    assert manual.order.status == OrderStatus.FILLED and manual.order.allocation is None
    holder = _allocate(paper_account, btcusdt, "Holder")
    seller = _allocate(paper_account, btcusdt, "Seller")
    return paper_account, holder, seller


def _book(allocation: StrategyAllocation | None, account, instrument) -> Position:
    return Position.objects.get(account=account, instrument=instrument, allocation=allocation)


def test_an_entry_is_not_blocked_by_another_book_and_an_exit_touches_only_its_own(shared, btcusdt):
    account, holder, seller = shared

    entered = orchestrator.orchestrator_run(now=NOW)

    assert entered.cycle.acted == 2  # the manual 0.1 BTC blocks neither strategy's buy
    holder_book, seller_book = _book(holder, account, btcusdt), _book(seller, account, btcusdt)
    assert holder_book.quantity > 0 and seller_book.quantity > 0
    holder_protection = set(
        Order.objects.filter(allocation=holder, source=OrderSource.PROTECTIVE).values_list("pk", flat=True)
    )
    assert len(holder_protection) == 2  # its stop and its target

    strategy_update(by=None, strategy=seller.strategy, rules=ALWAYS_SELL, reason="exit")
    store_candles(btcusdt, hourly_rows(6))
    exited = orchestrator.orchestrator_run(now=NOW + timedelta(hours=1))

    outcomes = {entry["strategy_id"]: entry for entry in exited.cycle.summary}
    assert outcomes[seller.strategy.strategy_id]["signal"] == "sell"
    assert _book(seller, account, btcusdt).quantity == 0
    assert _book(holder, account, btcusdt).quantity == holder_book.quantity  # untouched
    assert _book(None, account, btcusdt).quantity == D("0.1")  # the manual book too
    assert set(Order.objects.filter(pk__in=holder_protection).values_list("status", flat=True)) == {
        OrderStatus.OPEN
    }  # the holder's stop and target still stand
    assert set(
        Order.objects.filter(allocation=seller, source=OrderSource.PROTECTIVE).values_list(
            "status", flat=True
        )
    ) == {OrderStatus.CANCELED}


def test_each_allocation_earns_what_its_own_fills_add_up_to_and_the_account_is_their_sum(shared, btcusdt):
    account, holder, seller = shared
    orchestrator.orchestrator_run(now=NOW)
    strategy_update(by=None, strategy=seller.strategy, rules=ALWAYS_SELL, reason="exit")
    store_candles(btcusdt, hourly_rows(6))
    orchestrator.orchestrator_run(now=NOW + timedelta(hours=1))

    books = list(Position.objects.filter(account=account, instrument=btcusdt))
    for allocation in (holder, seller):
        record = performance.performance_record(allocation=allocation, now=hour(6))
        book = _book(allocation, account, btcusdt)
        own_fills = Fill.objects.filter(order__allocation=allocation)
        assert record.trades == own_fills.count()
        assert record.realised_pnl == book.realised_pnl
        assert book.realised_pnl == sum(f.realised_pnl for f in own_fills)
        assert record.backtest_return_pct is not None  # the same version backtested over the same bars

    figures = selectors.portfolio(account=account).figures
    mark = selectors.last_price(instrument=btcusdt)
    assert figures.positions_value == sum(b.quantity for b in books) * mark
    assert figures.realised_pnl == sum(b.realised_pnl for b in books)
    assert len(books) == 3  # two allocations and the manual book


def test_an_allocation_with_no_bar_since_it_was_made_records_its_performance_without_a_backtest(
    paper_account, btcusdt
):
    allocation = _allocate(paper_account, btcusdt, "Waiting")  # made now; the newest bar is of 2024

    record = performance.performance_record(allocation=allocation)

    assert (record.trades, record.backtest_return_pct) == (0, None)
