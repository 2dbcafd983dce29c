"""The orchestrator: active strategies on auto-trading accounts act on their newest candle, once;
the performance monitor records their live results beside their backtest."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from apps.health.checks import check_performance_monitor, check_trading_orchestrator
from apps.strategies.models import StrategyStatus
from apps.strategies.services.backtests import external_series_prepare
from apps.strategies.services.strategies import strategy_update
from apps.trading import orchestrator, performance
from apps.trading.models import (
    AccountKind,
    Order,
    OrderSource,
    OrderStatus,
    Position,
    StrategyAction,
    StrategyAllocation,
)
from apps.trading.services.snapshots import portfolio_snapshot
from tests.integration.active_strategies import strategy_create_as
from tests.unit.market_providers.conftest import hourly_rows

from .conftest import LAST_CLOSE, NO_LIMITS, hour, store_candles
from .threads import run_together

D = Decimal
PARAMETERS = {"stop_loss_pct": 0.02, "take_profit_pct": 0.05, "position_size_pct": 0.5}
ALWAYS_BUY = [{"condition": "close > 0", "action": "buy", "priority": 1}]
ALWAYS_SELL = [
    {"condition": "close > 0", "action": "sell", "priority": 1},
    {"condition": "close < 0", "action": "buy", "priority": 2},
]
NOW = hour(5) + timedelta(minutes=10)  # just after the fifth candle (open 04:00) closed


@pytest.fixture
def strategy(btcusdt):
    return strategy_create_as(
        name="Always in",
        type="custom",
        instrument=btcusdt,
        timeframe="1h",
        parameters=PARAMETERS,
        indicators=[],
        rules=ALWAYS_BUY,
        status=StrategyStatus.ACTIVE,
    )


@pytest.fixture
def allocation(paper_account, strategy):
    paper_account.auto_trading = True
    paper_account.save()
    return StrategyAllocation.objects.create(account=paper_account, strategy=strategy)


def test_a_buy_signal_enters_with_the_backtest_sizing_and_protects_the_fill(allocation, paper_account):
    result = orchestrator.orchestrator_run(now=NOW)

    assert (result.cycle.acted, result.cycle.orders_placed, result.cycle.orders_refused) == (1, 1, 0)
    entry = Order.objects.get(source=OrderSource.STRATEGY)
    price = LAST_CLOSE * D("1.0005")
    assert (entry.status, entry.strategy, entry.average_price) == (
        OrderStatus.FILLED,
        allocation.strategy,
        price,
    )
    spent = entry.filled_quantity * price + entry.fees
    assert D(5000) - price * D("1.001") * D("0.00001") < spent <= D(5000)  # half the equity, fee included
    stop, target = sorted(entry.children.all(), key=lambda o: o.type)
    assert (stop.type, stop.status, stop.stop_price) == (
        "STOP_LOSS",
        OrderStatus.OPEN,
        (price * D("0.98")).quantize(D("0.01")),
    )
    assert (target.type, target.stop_price) == ("TAKE_PROFIT", (price * D("1.05")).quantize(D("0.01")))
    assert (
        stop.oco_group == target.oco_group != "" and stop.quantity == target.quantity == entry.filled_quantity
    )
    action = StrategyAction.objects.get()
    assert (action.candle_time, action.signal, action.order) == (hour(4), "buy", entry)


def test_a_strategy_acts_at_most_once_per_candle_however_often_the_cycle_runs(allocation):
    orchestrator.orchestrator_run(now=NOW)
    again = orchestrator.orchestrator_run(now=NOW + timedelta(minutes=5))
    direct = orchestrator.signal_apply(
        allocation=allocation,
        version=allocation.strategy.current_version,
        signal=orchestrator.Action.BUY,
        candle_time=hour(4),
    )

    assert (again.cycle.acted, direct) == (0, None)
    assert (
        StrategyAction.objects.count() == 1 and Order.objects.filter(source=OrderSource.STRATEGY).count() == 1
    )


def test_a_sell_signal_on_the_next_candle_cancels_the_protection_and_sells_everything(
    allocation, strategy, btcusdt
):
    orchestrator.orchestrator_run(now=NOW)
    strategy_update(by=None, strategy=strategy, rules=ALWAYS_SELL, reason="flip")
    store_candles(btcusdt, hourly_rows(6))

    result = orchestrator.orchestrator_run(now=NOW + timedelta(hours=1))

    assert result.cycle.acted == 1
    exit_ = Order.objects.filter(source=OrderSource.STRATEGY, side="SELL").get()
    assert exit_.status == OrderStatus.FILLED
    assert set(Order.objects.filter(source=OrderSource.PROTECTIVE).values_list("status", flat=True)) == {
        OrderStatus.CANCELED
    }
    assert Position.objects.get(instrument=btcusdt).quantity == 0


def test_a_buy_signal_while_holding_adds_nothing(allocation, btcusdt):
    orchestrator.orchestrator_run(now=NOW)
    store_candles(btcusdt, hourly_rows(6))

    orchestrator.orchestrator_run(now=NOW + timedelta(hours=1))

    assert Order.objects.filter(source=OrderSource.STRATEGY).count() == 1
    assert "nothing to do" in StrategyAction.objects.order_by("-candle_time").first().decision


@pytest.mark.parametrize("switch_off", ["auto_trading", "paused", "disabled"])
def test_nothing_trades_without_auto_trading_an_active_strategy_and_an_enabled_allocation(
    allocation, switch_off
):
    if switch_off == "auto_trading":
        allocation.account.auto_trading = False
        allocation.account.save()
    elif switch_off == "paused":
        allocation.strategy.status = StrategyStatus.PAUSED
        allocation.strategy.save()
    else:
        allocation.enabled = False
        allocation.save()

    assert orchestrator.orchestrator_run(now=NOW).cycle.acted == 0
    assert not Order.objects.exists()


def test_a_stale_candle_is_not_acted_on(allocation):
    assert orchestrator.orchestrator_run(now=NOW + timedelta(hours=3)).cycle.acted == 0


def test_an_order_the_risk_manager_refuses_is_counted_and_explained(allocation, paper_account):
    paper_account.max_order_notional = D(100)
    paper_account.save()

    result = orchestrator.orchestrator_run(now=NOW)

    assert (result.cycle.orders_placed, result.cycle.orders_refused) == (0, 1)
    assert "refused by the risk manager (max_order_notional)" in StrategyAction.objects.get().decision
    assert check_trading_orchestrator(now=NOW)["orders_refused"] == 1


def test_a_live_entry_is_left_new_for_the_submit_task(make_account, strategy, fake_exchange):
    live = make_account(
        name="Live", kind=AccountKind.LIVE, auto_trading=True, api_key="k" * 16, secret="s" * 16, **NO_LIMITS
    )
    StrategyAllocation.objects.create(account=live, strategy=strategy)

    result = orchestrator.orchestrator_run(now=NOW)

    entry = Order.objects.get(account=live)
    assert (entry.status, result.live_orders) == (OrderStatus.NEW, [entry.pk])
    assert fake_exchange.requests("POST /api/v3/order") == []  # sending is the task's job


def test_the_health_document_components_report_the_last_cycle_and_the_strategies(allocation, paper_account):
    assert check_trading_orchestrator(now=NOW)["status"] == "degraded"  # a strategy to trade, no cycle yet
    orchestrator.orchestrator_run(now=NOW)
    portfolio_snapshot(account=paper_account, now=NOW)
    performance.performance_record(allocation=allocation, now=NOW)

    component = check_trading_orchestrator(now=NOW)
    monitor = check_performance_monitor(now=NOW)

    assert (component["status"], component["orders_placed"], component["acted"]) == ("healthy", 1, 1)
    assert (
        monitor["status"] == "healthy"
        and monitor["strategies"][0]["strategy_id"] == allocation.strategy.strategy_id
    )


def test_the_performance_monitor_replays_the_strategys_fills_and_compares_with_its_backtest(
    allocation, btcusdt
):
    StrategyAllocation.objects.filter(pk=allocation.pk).update(created_at=hour(0))
    allocation.refresh_from_db()
    orchestrator.orchestrator_run(now=NOW)
    entry = Order.objects.get(source=OrderSource.STRATEGY)

    record = performance.performance_record(
        allocation=allocation, now=hour(5)
    )  # a whole hour: with a backtest
    again = performance.performance_record(allocation=allocation, now=hour(5) + timedelta(minutes=2))

    unrealised = entry.filled_quantity * LAST_CLOSE - entry.filled_quantity * entry.average_price
    assert (record.realised_pnl, record.unrealised_pnl) == (-entry.fees, unrealised.quantize(D("1e-8")))
    assert record.total_pnl == record.realised_pnl + record.unrealised_pnl < 0
    assert record.trades == 1 and record.drawdown_pct > 0
    assert record.backtest_return_pct is not None
    assert again.pk == record.pk  # once per slot


@pytest.mark.django_db(transaction=True)
def test_cycles_running_at_the_same_time_still_act_once_per_candle(allocation):
    results = run_together(4, lambda i: orchestrator.orchestrator_run(now=NOW).cycle.acted)

    assert sorted(results) == [0, 0, 0, 1]
    assert (
        StrategyAction.objects.count() == 1 and Order.objects.filter(source=OrderSource.STRATEGY).count() == 1
    )


def test_a_strategy_reading_model_series_waits_for_the_training_side_then_acts(paper_account, btcusdt):
    reader = strategy_create_as(
        name="Model reader",
        type="ml_signal",
        instrument=btcusdt,
        timeframe="1h",
        parameters=PARAMETERS,
        indicators=[],
        rules=[{"condition": "ML_PROBA > 0.5", "action": "buy", "priority": 1}],
        status=StrategyStatus.ACTIVE,
    )
    paper_account.auto_trading = True
    paper_account.save()
    allocation = StrategyAllocation.objects.create(account=paper_account, strategy=reader)

    waiting = orchestrator.orchestrator_run(now=NOW)

    assert waiting.series_needed == [reader.pk]  # the orchestrator never fits a model itself
    assert waiting.cycle.summary == [
        {
            "account": paper_account.pk,
            "allocation": allocation.pk,
            "strategy_id": reader.strategy_id,
            "outcome": "skipped",
            "code": "series_pending",
            "reason": "waiting for its model series (computed on the training queue)",
        }
    ]
    assert not StrategyAction.objects.exists()

    external_series_prepare(strategy_id=reader.pk)  # what the training queue runs
    acting = orchestrator.orchestrator_run(now=NOW)

    assert acting.series_needed == []
    assert StrategyAction.objects.get(allocation=allocation).signal == "none"  # too little history: NaN


def test_every_allocation_that_cannot_act_is_recorded_with_why_and_health_says_so(allocation, paper_account):
    paper_account.auto_trading = False
    paper_account.save()
    off = orchestrator.orchestrator_run(now=NOW)

    assert [(e["outcome"], e["code"]) for e in off.cycle.summary] == [("skipped", "auto_trading_off")]
    paper_account.auto_trading = True
    paper_account.save()
    stale = orchestrator.orchestrator_run(now=NOW + timedelta(hours=3))  # no candle for three hours
    (entry,) = stale.cycle.summary
    assert (entry["code"], entry["strategy_id"]) == ("stale_data", allocation.strategy.strategy_id)
    assert entry["reason"].startswith("stale data: the newest 1h candle closed 2024-01-01 05:00 UTC")
    health = check_trading_orchestrator(now=NOW + timedelta(hours=3))
    assert health["status"] == "degraded"
    assert health["message"].startswith("1 enabled allocation(s) cannot act")
    assert not StrategyAction.objects.exists()
