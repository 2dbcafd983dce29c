"""The autonomous loop closes through a real Celery worker, with no hand step after setup: the shipped
BTC hourly history, re-timed so its newest candle is the last closed hour, is analysed, a model is
trained and promoted or refused with its reason, the daily update decides on each strategy, the
lifecycle policy allocates the active ones, the orchestrator trades them on paper, and each
allocation's P&L is the sum of its own fills while the account is the sum of its books."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pandas as pd
import pytest
from django.utils import timezone

from apps.core.models import JobStatus
from apps.market.models import MarketAnalysis
from apps.market.services.candles import candles_store
from apps.market.services.instruments import instrument_get_or_create
from apps.strategies.models import DecisionKind, StrategyDecision, StrategyStatus, StrategyUpdateRun
from apps.trading import selectors
from apps.trading.models import (
    Fill,
    OrchestratorCycle,
    OrderSource,
    PortfolioSnapshot,
    StrategyAllocation,
    StrategyPerformance,
)
from apps.trading.services.accounts import account_create
from apps.training.models import MLModel, TrainingRun
from tests.fakes.http import closed_port_url
from tests.integration.active_strategies import strategy_create_as
from tests.integration.market.conftest import BTC_HOURLY
from tests.integration.strategies.conftest import SMA_RULES
from tests.integration.trading.conftest import NO_LIMITS
from tests.integration.worker import running_worker
from workers.market import analysis_run_all
from workers.strategies import daily_update
from workers.trading import (
    orchestrator_run,
    paper_orders_match,
    performance_record_all,
    portfolio_snapshot_all,
)
from workers.training import scheduled_run

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BARS = 3_000
ALWAYS_IN = [{"condition": "close > 0", "action": "buy", "priority": 1}]


def _retimed_history() -> pd.DataFrame:
    """The newest BARS shipped hourly candles, moved so the newest one closed at the last full hour."""
    raw = pd.read_csv(BTC_HOURLY).tail(BARS)
    index = pd.to_datetime(raw.pop("timestamp"), unit="ms", utc=True)
    last_closed_open = pd.Timestamp(timezone.now()).floor("1h") - pd.Timedelta(hours=1)
    frame = raw.set_axis(index + (last_closed_open - index.iloc[-1]))
    frame.index.name = "time"
    return frame


def _until(done: Callable[[], object], what: str, timeout: float = 240) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = done()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s")


def _finished(model: type, **filters: object) -> Callable[[], object]:
    def check() -> object:
        rows = list(model.objects.filter(**filters))
        return (
            rows if rows and all(r.status in (JobStatus.COMPLETED, JobStatus.FAILED) for r in rows) else None
        )

    return check


def test_the_loop_closes_from_fresh_candles_to_attributed_paper_trades(tmp_path, monkeypatch, user):
    # The worker process reads these from its environment: no exchange is reachable, and nothing
    # retires a strategy on the first day (the decisions are still recorded with their numbers).
    for name, value in {
        "CCXT_URLS_OVERRIDE": f"coinbase={closed_port_url()}",
        "CCXT_MAX_RETRIES": "0",
        "STRATEGY_RETIRE_MAX_DRAWDOWN_PCT": "100",
        "STRATEGY_RETIRE_MIN_SHARPE": "-100",
        "STRATEGY_RETIRE_MAX_UNDERPERFORMANCE_PCT": "1000",
        "TRAINING_LOOKBACK_BARS": "2000",
        "LLM_PROVIDERS": "offline",
    }.items():
        monkeypatch.setenv(name, value)
    btc = instrument_get_or_create(symbol="BTCUSD", exchange="coinbase", timeframes=["1h"])
    candles_store(instrument=btc, timeframe="1h", frame=_retimed_history())
    document = {"instrument": btc, "timeframe": "1h", "indicators": [], "status": StrategyStatus.ACTIVE}
    always_in = strategy_create_as(
        name="Always in", type="custom", parameters={"stop_loss_pct": 0.05}, rules=ALWAYS_IN, **document
    )
    crossover = strategy_create_as(
        name="SMA crossover",
        type="trend_following",
        parameters={"fast_period": 20, "slow_period": 50},
        rules=SMA_RULES,
        **document,
    )
    account = account_create(
        owner=user,
        name="Auto",
        starting_cash=Decimal(10_000),
        quote_currency="USD",
        auto_trading=True,
        auto_allocate=True,
        **NO_LIMITS,
    )
    started = timezone.now() - timedelta(seconds=1)

    with running_worker(tmp_path / "worker.log"):
        analysis_run_all.delay()
        (analysis,) = _until(_finished(MarketAnalysis, instrument=btc), "the analysis")
        scheduled_run.delay()
        (training,) = _until(_finished(TrainingRun), "the training run")
        daily_update.delay()
        (update,) = _until(_finished(StrategyUpdateRun), "the daily update")
        orchestrator_run.delay()
        (cycle,) = _until(_finished(OrchestratorCycle), "the orchestrator cycle")
        paper_orders_match.delay()
        portfolio_snapshot_all.delay()
        _until(lambda: PortfolioSnapshot.objects.filter(account=account).exists(), "the snapshot")
        performance_record_all.delay()
        _until(lambda: StrategyPerformance.objects.count() == 2, "the performance records")

    # Analysis of fresh data, with signals from it (not a repeated old one).
    assert (analysis.status, analysis.stale) == (JobStatus.COMPLETED, False), analysis.error
    assert analysis.last_candle_time >= started - timedelta(hours=2)
    # A model trained and either promoted or kept a candidate, with the reason either way.
    assert training.status == JobStatus.COMPLETED, training.error
    (outcome,) = training.report["series"][0]["models"]
    model = MLModel.objects.get(model_id=outcome["model_id"])
    assert outcome["reason"]
    assert model.stage == ("champion" if outcome["promoted"] else "candidate")
    # The daily update decided on both strategies, with their numbers.
    assert update.status == JobStatus.COMPLETED, update.error
    assert update.summary["strategies"] == 2
    evaluated = StrategyDecision.objects.filter(update_run=update, kind=DecisionKind.EVALUATED)
    assert {d.strategy_id for d in evaluated} == {always_in.pk, crossover.pk}
    # The lifecycle policy allocated both; the always-in strategy bought on paper in its own book.
    assert cycle.status == JobStatus.COMPLETED, cycle.error
    allocations = {a.strategy_id: a for a in StrategyAllocation.objects.filter(account=account)}
    assert set(allocations) == {always_in.pk, crossover.pk}
    assert {a.created_by for a in allocations.values()} == {"lifecycle policy"}
    lifecycle = [e for e in cycle.summary if e["outcome"] == "lifecycle"]
    assert sorted(e["strategy_id"] for e in lifecycle) == sorted(
        [always_in.strategy_id, crossover.strategy_id]
    )
    acted = {e["strategy_id"]: e for e in cycle.summary if e["outcome"] == "acted"}
    assert acted[always_in.strategy_id]["signal"] == "buy"
    buy_fills = Fill.objects.filter(
        order__allocation=allocations[always_in.pk], order__source=OrderSource.STRATEGY, side="BUY"
    )
    assert buy_fills.count() >= 1
    # Attribution: each allocation's P&L is the sum of its own fills; the account is the sum of its books.
    account.refresh_from_db()
    portfolio = selectors.portfolio(account=account)
    for allocation in allocations.values():
        record = StrategyPerformance.objects.get(allocation=allocation)
        fills = Fill.objects.filter(order__allocation=allocation)
        assert record.realised_pnl == sum((f.realised_pnl for f in fills), Decimal(0))
        assert record.trades == fills.count()
    book_values = sum((row.marked.value for row in portfolio.rows), Decimal(0))
    assert portfolio.figures.positions_value == book_values
    spent = sum(
        (f.quantity * f.price + f.fee for f in Fill.objects.filter(order__account=account)), Decimal(0)
    )
    # Buys only on this first bar; cash is kept to 8 decimal places.
    assert (account.starting_cash - spent).quantize(Decimal("1e-8")) == portfolio.figures.cash
