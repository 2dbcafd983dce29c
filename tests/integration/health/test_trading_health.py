"""The health document's trading components: the orchestrator's last cycle and the performance monitor,
as the snapshot job computes them and GET /api/health reads them back."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core.models import JobStatus
from apps.health.checks import check_performance_monitor
from apps.market.services.instruments import instrument_get_or_create
from apps.strategies.models import Strategy, StrategyStatus, StrategyType
from apps.trading.domain.risk_rules import TradingState
from apps.trading.models import (
    Account,
    OrchestratorCycle,
    PortfolioSnapshot,
    StrategyAllocation,
    StrategyPerformance,
)
from apps.trading.services.accounts import account_create
from tests.integration.health.snapshots import take_snapshot

pytestmark = pytest.mark.django_db
D = Decimal


def _components(client) -> dict:
    """Take a snapshot now, then the components GET /api/health answers (without their checked_at)."""
    take_snapshot()
    components = client.get("/api/health").json()["components"]
    for component in components.values():
        assert component.pop("checked_at")
    return components


def _account(user, name: str, **fields: object) -> Account:
    return account_create(owner=user, name=name, starting_cash=D(10000), **fields)


def _allocation(account: Account, number: int, **fields: object) -> StrategyAllocation:
    instrument = instrument_get_or_create(symbol="BTCUSDT", exchange="binance", timeframes=["1h"])
    strategy = Strategy.objects.create(
        strategy_id=f"strategy_S{number}_BTCUSDT",
        name=f"S{number}",
        type=StrategyType.CUSTOM,
        instrument=instrument,
        timeframe="1h",
        status=fields.pop("status", StrategyStatus.ACTIVE),
    )
    # Distinct creation times: the allocations are listed in the strategies' order (newest first).
    Strategy.objects.filter(pk=strategy.pk).update(created_at=timezone.now() - timedelta(hours=number))
    return StrategyAllocation.objects.create(account=account, strategy=strategy, **fields)


def _performance(
    allocation: StrategyAllocation, minutes_ago: int, total: str, backtest: str | None = None
) -> StrategyPerformance:
    return StrategyPerformance.objects.create(
        allocation=allocation,
        time=timezone.now() - timedelta(minutes=minutes_ago),
        realised_pnl=D(total),
        unrealised_pnl=D(0),
        total_pnl=D(total),
        return_pct=D(total) / 100,
        drawdown_pct=D("0.5"),
        trades=1,
        backtest_return_pct=None if backtest is None else D(backtest),
    )


def _cycle(status: str, minutes_ago: int, finished: bool = True, **fields: object) -> OrchestratorCycle:
    moment = timezone.now() - timedelta(minutes=minutes_ago)
    cycle = OrchestratorCycle.objects.create(
        status=status, finished_at=moment if finished else None, **fields
    )
    OrchestratorCycle.objects.filter(pk=cycle.pk).update(created_at=moment)
    cycle.refresh_from_db()
    return cycle


def _snapshot(account: Account, minutes_ago: int) -> PortfolioSnapshot:
    return PortfolioSnapshot.objects.create(
        account=account,
        time=timezone.now() - timedelta(minutes=minutes_ago),
        cash=D(10000),
        positions_value=D(0),
        equity=D(10000),
        unrealised_pnl=D(0),
        realised_pnl=D(0),
        total_pnl=D(0),
        daily_pnl=D(0),
        exposure=D(0),
        drawdown=D(0),
        positions=[],
    )


# -- trading_orchestrator ---------------------------------------------------------------------------


def test_with_nothing_to_trade_and_no_cycle_the_orchestrator_is_healthy(staff_client):
    assert _components(staff_client)["trading_orchestrator"] == {
        "status": "healthy",
        "message": "No cycle yet; 0 strategies to trade",
        "strategies": 0,
        "waiting": {"allocate": 0, "wind_down": 0},
    }


def test_a_strategy_to_trade_without_a_cycle_degrades_it(staff_client, user):
    trading = _account(user, "Auto", auto_trading=True)
    _allocation(trading, 1)
    _allocation(trading, 2, enabled=False)
    _allocation(trading, 3, status=StrategyStatus.PAUSED)
    _allocation(_account(user, "Manual"), 4)

    assert _components(staff_client)["trading_orchestrator"] == {
        "status": "degraded",
        "message": "No cycle yet; 1 strategies to trade; waiting for an operator (lifecycle policy off): "
        "1 active strategies to allocate, 0 retired ones to wind down",
        "strategies": 1,
        "waiting": {"allocate": 1, "wind_down": 0},  # strategy 4 could trade on Auto too
    }


def test_a_recent_cycle_is_reported_with_its_counts(staff_client, user):
    _allocation(_account(user, "Auto", auto_trading=True), 1)
    _cycle(JobStatus.COMPLETED, minutes_ago=30, acted=9)
    cycle = _cycle(JobStatus.COMPLETED, minutes_ago=2, acted=2, orders_placed=3, orders_refused=1)

    assert _components(staff_client)["trading_orchestrator"] == {
        "status": "healthy",
        "message": "Trading orchestrator operational",
        "strategies": 1,
        "waiting": {"allocate": 0, "wind_down": 0},
        "last_cycle": cycle.finished_at.isoformat(),
        "acted": 2,
        "orders_placed": 3,
        "orders_refused": 1,
    }


def test_an_old_cycle_degrades_it_only_while_there_is_a_strategy_to_trade(staff_client, user):
    cycle = _cycle(JobStatus.COMPLETED, minutes_ago=20)
    assert _components(staff_client)["trading_orchestrator"]["status"] == "healthy"

    _allocation(_account(user, "Auto", auto_trading=True), 1)

    component = _components(staff_client)["trading_orchestrator"]
    assert (component["status"], component["message"]) == (
        "degraded",
        f"No cycle since {cycle.finished_at:%Y-%m-%d %H:%M} UTC",
    )


def test_a_failed_cycle_makes_it_unhealthy_with_the_start_of_its_error(staff_client):
    cycle = _cycle(JobStatus.FAILED, minutes_ago=1, finished=False, error="x" * 250)

    component = _components(staff_client)["trading_orchestrator"]

    assert (component["status"], component["message"], component["last_cycle"]) == (
        "unhealthy",
        f"The last cycle failed: {'x' * 200}",
        cycle.created_at.isoformat(),
    )


# -- performance_monitor ----------------------------------------------------------------------------


def test_without_accounts_the_performance_monitor_is_healthy_and_empty(staff_client):
    monitor = _components(staff_client)["performance_monitor"]

    assert monitor == {
        "status": "healthy",
        "message": "Performance monitor operational",
        "last_snapshot": None,
        "halted_accounts": [],
        "strategies": [],
        "models": [],
    }


@pytest.mark.parametrize("snapshot_minutes_ago", [None, 20])
def test_an_account_without_a_recent_snapshot_degrades_it(staff_client, user, snapshot_minutes_ago):
    account = _account(user, "Paper")
    snapshot = None if snapshot_minutes_ago is None else _snapshot(account, snapshot_minutes_ago)

    monitor = _components(staff_client)["performance_monitor"]

    assert (monitor["status"], monitor["message"], monitor["last_snapshot"]) == (
        "degraded",
        "No recent portfolio snapshot",
        None if snapshot is None else snapshot.time.isoformat(),
    )


def test_a_halted_account_degrades_it_by_name(staff_client, user):
    _snapshot(_account(user, "Calm"), 3)
    _account(user, "Stopped", trading_state=TradingState.HALTED)

    monitor = _components(staff_client)["performance_monitor"]

    assert (monitor["status"], monitor["message"], monitor["halted_accounts"]) == (
        "degraded",
        "Trading halted on: Stopped",
        ["Stopped"],
    )


def test_each_enabled_allocation_shows_its_newest_record_and_its_newest_backtest(staff_client, user):
    account = _account(user, "Paper")
    latest_snapshot = _snapshot(account, 3)
    _snapshot(account, 8)
    compared = _allocation(account, 1)
    _performance(compared, 15, "5", backtest="1.5")
    _performance(compared, 10, "6", backtest="2.5")
    newest = _performance(compared, 5, "7.25")
    never_compared = _allocation(account, 2)
    only = _performance(never_compared, 5, "-3")
    _allocation(account, 3)  # no record yet: not listed
    _performance(_allocation(account, 4, enabled=False), 5, "1")

    monitor = _components(staff_client)["performance_monitor"]

    newest.refresh_from_db()
    only.refresh_from_db()
    assert monitor == {
        "status": "healthy",
        "message": "Performance monitor operational",
        "last_snapshot": latest_snapshot.time.isoformat(),
        "halted_accounts": [],
        "strategies": [
            {
                "strategy_id": "strategy_S1_BTCUSDT",
                "account": "Paper",
                "total_pnl": str(newest.total_pnl),
                "return_pct": float(newest.return_pct),
                "drawdown_pct": 0.5,
                "backtest_return_pct": 2.5,
            },
            {
                "strategy_id": "strategy_S2_BTCUSDT",
                "account": "Paper",
                "total_pnl": str(only.total_pnl),
                "return_pct": -0.03,
                "drawdown_pct": 0.5,
                "backtest_return_pct": None,
            },
        ],
        "models": [],
    }


def test_others_see_counts_and_statuses_not_accounts_strategies_or_error_messages(
    anon_client, api_client, user
):
    account = _account(user, "Private fund")
    _snapshot(account, 3)
    _performance(_allocation(account, 1), 5, "7.25")
    _account(user, "Stopped", trading_state=TradingState.HALTED)
    _cycle(JobStatus.FAILED, minutes_ago=1, finished=False, error="ccxt: binance.com said key ABC is invalid")

    for caller in (anon_client, api_client):  # anonymous, or a user who is not staff
        components = _components(caller)
        monitor, orchestrator = components["performance_monitor"], components["trading_orchestrator"]
        assert (monitor["status"], monitor["message"]) == (
            "degraded",
            "degraded: the reason is shown to staff",
        )
        assert (monitor["strategies"], monitor["halted_accounts"]) == (1, 1)
        assert orchestrator["message"] == "unhealthy: the reason is shown to staff"
        assert orchestrator["status"] == "unhealthy" and orchestrator["orders_placed"] == 0
        text = str(components)
        assert "Private fund" not in text and "Stopped" not in text and "ABC" not in text
        assert "strategy_S1" not in text and "7.25" not in text


def _performance_monitor_queries(allocations: int, user) -> int:
    account = _account(user, f"Account of {allocations}")
    for number in range(allocations):
        allocation = _allocation(account, 10 * allocations + number)
        _performance(allocation, 10, "1", backtest="1")
        _performance(allocation, 5, "2")
    with CaptureQueriesContext(connection) as queries:
        monitor = check_performance_monitor()
    assert len(monitor["strategies"]) == allocations
    Account.objects.all().delete()  # and with them their allocations and records
    return len(queries)


def test_the_performance_monitor_makes_as_many_queries_for_five_allocations_as_for_one(user):
    assert _performance_monitor_queries(5, user) == _performance_monitor_queries(1, user)


def test_a_replays_cycles_are_history_not_the_live_orchestrators_health(staff_client, user):
    _allocation(_account(user, "Auto", auto_trading=True), 1)
    live = _cycle(JobStatus.COMPLETED, minutes_ago=2, acted=1)
    _cycle(JobStatus.FAILED, minutes_ago=1, trigger="replay:7", error="a replayed bar failed")

    component = _components(staff_client)["trading_orchestrator"]

    assert (component["status"], component["last_cycle"]) == ("healthy", live.finished_at.isoformat())
