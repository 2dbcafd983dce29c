"""One real row of every model registered in the admin, made as the product makes it.

``ROW_MAKERS`` maps each registered model's label to the function that makes (or finds) its row in
an :class:`AdminWorld`. Rows come from the services, commands and test fixtures that write them in
production and in the other tests (candles from the shipped history, a strategy's real backtest and
optimisation, a paper account that traded through the orchestrator and the risk manager); only
records written by machinery too slow or too remote for a page test (a reconciliation against an
exchange, a health document asked of live workers, a trained booster, a generation's candidate
backtests) are made directly, with the fields their writers fill in. A model registered without a
maker fails the walk's coverage test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db.models import Model
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from knox.models import AuthToken

from apps.core import clock
from apps.core.models import JobStatus
from apps.health.models import ExternalApiProbe, HealthSnapshot, SnapshotTrigger
from apps.health.services import snapshot_request
from apps.market.admin_candles import CandleAdmin
from apps.market.domain.candle_files import read_candles
from apps.market.models import Candle, Instrument, MarketAnalysis, MarketEvent, Signal
from apps.market.services.analyses import analysis_request, analysis_run, analysis_slot
from apps.market.services.candles import candles_store
from apps.market.services.instruments import instrument_get_or_create
from apps.strategies.models import (
    Backtest,
    CandidateOutcome,
    DecisionKind,
    GenerationCandidate,
    GenerationRun,
    JobTrigger,
    OptimizationRun,
    Strategy,
    StrategyDecision,
    StrategyStatus,
    StrategyUpdateRun,
)
from apps.strategies.services.backtests import backtest_create, backtest_run
from apps.strategies.services.daily_update import daily_update_request
from apps.strategies.services.generation import generation_create
from apps.strategies.services.optimizations import (
    optimization_chunk_run,
    optimization_create,
    optimization_finish,
)
from apps.strategies.services.strategies import decision_record
from apps.trading import orchestrator, performance
from apps.trading.models import (
    Account,
    AccountStateChange,
    IdempotencyKey,
    OrchestratorCycle,
    Order,
    PortfolioSnapshot,
    Position,
    Reconciliation,
    Repair,
    RepairKind,
    RiskRefusal,
    StrategyAllocation,
    StrategyPerformance,
)
from apps.trading.services.accounts import account_halt, account_resume
from apps.trading.services.orders import order_place
from apps.trading.services.snapshots import portfolio_snapshot
from apps.training.models import MLModel, PromotionDecision, Stage, TrainingRun
from apps.training.services.model_training import model_train_request, training_spec_build
from tests.integration.active_strategies import strategy_create_as
from tests.integration.llm.conftest import spend
from tests.integration.market.conftest import BTC_HOURLY
from tests.integration.strategies.conftest import RSI_DOCUMENT, make_strategy
from tests.integration.trading.conftest import hour
from workers.schedules import sync_schedules

D = Decimal
HISTORY_BARS = 1200  # the newest hourly bars of the shipped BTC/USD history: enough for every job below
HISTORY_NOW = datetime(2019, 10, 17, 10, 5, tzinfo=UTC)  # just after the newest shipped candle closed
TRADING_NOW = hour(5) + timedelta(minutes=10)  # just after the fifth candle of the trading fixture closed
ALWAYS_BUY = [{"condition": "close > 0", "action": "buy", "priority": 1}]


class AdminWorld:
    """The scenery the rows share, each piece built on first use and once.

    ``user`` owns the trading account and the API token; ``account`` is the trading tests' paper
    account on ``btcusdt`` (their five hourly candles), ``btc`` the shipped BTC/USD hourly history
    the strategy, its jobs and the model are computed on.
    """

    def __init__(self, *, user: AbstractBaseUser, account: Account, btcusdt: Instrument) -> None:
        self.user = user
        self.account = account
        self.btcusdt = btcusdt

    # --- market data and the research side ---------------------------------------------------

    @cached_property
    def btc(self) -> Instrument:
        instrument = instrument_get_or_create(symbol="BTCUSD", exchange="coinbase", timeframes=["1h"])
        frame = read_candles(BTC_HOURLY).iloc[-HISTORY_BARS:]
        candles_store(instrument=instrument, timeframe="1h", frame=frame)
        return instrument

    @cached_property
    def analysis(self) -> MarketAnalysis:
        """The 30-minute analysis of the newest shipped bar, run as the job runs it (without a fetch)."""
        requested = analysis_request(instrument=self.btc, timeframe="1h", slot=analysis_slot(HISTORY_NOW))
        with clock.replaying(HISTORY_NOW):
            analysis = analysis_run(analysis_id=requested.pk, fetch=False)
        assert analysis is not None
        assert analysis.status == JobStatus.COMPLETED, analysis.error
        return analysis

    @cached_property
    def strategy(self) -> Strategy:
        return make_strategy(self.btc)

    @cached_property
    def backtest(self) -> Backtest:
        """A finished backtest of the strategy over the newest 800 bars (the chart has points to draw)."""
        end = Candle.objects.filter(instrument=self.btc).latest("open_time").open_time
        created = backtest_create(
            strategy=self.strategy, start=end - timedelta(hours=800), end=end, trigger=JobTrigger.ADMIN
        )
        backtest = backtest_run(backtest_id=created.pk)
        assert backtest is not None
        assert backtest.status == JobStatus.COMPLETED, backtest.error
        return backtest

    @cached_property
    def optimization(self) -> OptimizationRun:
        run = optimization_create(strategy=self.strategy, space={"rsi_period": [10, 14]}, folds=2)
        for chunk in range(run.chunks_total):
            optimization_chunk_run(run_id=run.pk, chunk_index=chunk)
        finished = optimization_finish(run_id=run.pk)
        assert finished is not None
        assert finished.status == JobStatus.COMPLETED, finished.error
        return finished

    @cached_property
    def update_run(self) -> StrategyUpdateRun:
        return daily_update_request(now=HISTORY_NOW)[0]

    @cached_property
    def decision(self) -> StrategyDecision:
        """An evaluation of the daily update, linked to its run, backtest and optimisation."""
        return decision_record(
            self.strategy,
            DecisionKind.EVALUATED,
            "kept: every limit met",
            {"total_return_pct": self.backtest.metrics["total_return_pct"]},
            actor="daily update",
            update_run=self.update_run,
            backtest=self.backtest,
            optimization=self.optimization,
        )

    @cached_property
    def generation(self) -> GenerationRun:
        """A finished offline generation with one rejected candidate and the backtest evidence."""
        run = generation_create(instrument=self.btc, timeframe="1h", count=1, provider="offline")
        metrics = self.backtest.metrics
        GenerationCandidate.objects.create(
            run=run, index=0, name="RSI Dip Buyer", document={**RSI_DOCUMENT, "rationale": "buys dips"},
            outcome=CandidateOutcome.REJECTED, reason="holdout Sharpe ratio below 0.5",
            train_metrics=metrics, holdout_metrics=metrics, holdout_buy_and_hold_pct=1.5,
        )  # fmt: skip
        GenerationRun.objects.filter(pk=run.pk).update(
            status=JobStatus.COMPLETED, provider_used="offline", model="templates",
            summary={"kept": 0, "rejected": 1}, context={"symbol": "BTCUSD", "bars": 500},
        )  # fmt: skip
        run.refresh_from_db()
        return run

    @cached_property
    def ml_model(self) -> MLModel:
        """A model registered through the training service, with what training stores on it."""
        spec = training_spec_build(
            symbol="BTCUSD", timeframe="1h", model_type="price_prediction", lookback_period=500
        )
        model = model_train_request(spec=spec, now=HISTORY_NOW)
        scores = {"accuracy": 0.52, "roc_auc": 0.54, "log_loss": 0.69}
        MLModel.objects.filter(pk=model.pk).update(
            status=JobStatus.COMPLETED, stage=Stage.CANDIDATE, progress=1.0, threshold=0.55,
            metrics={"train": scores, "validation": scores, "test": scores},
            feature_importances={"rsi_14": 12.5, "return_1": 8.25, "atr_14": 3.0},
            artifact_sha256="0" * 64, best_iteration=41, train_start=HISTORY_NOW - timedelta(hours=600),
            train_end=HISTORY_NOW - timedelta(hours=1), seen_until=HISTORY_NOW - timedelta(hours=1),
            robustness={
                "observations": 75, "sharpe_per_bar": 0.14, "skewness": 0.1, "kurtosis": 4.2, "psr": 0.88,
                "trials": 3, "sharpe_variance": 0.002, "expected_max_sharpe": 0.04, "deflated_sharpe": 0.8,
                "min_track_record_bars": 160.0, "lineage": "model:price_prediction",
            },
        )  # fmt: skip
        model.refresh_from_db()
        return model

    # --- trading ------------------------------------------------------------------------------

    @cached_property
    def allocation(self) -> StrategyAllocation:
        """An always-buying strategy allocated to the auto-trading paper account."""
        strategy = strategy_create_as(
            name="Always in", type="custom", instrument=self.btcusdt, timeframe="1h",
            parameters={"stop_loss_pct": 0.02, "take_profit_pct": 0.05, "position_size_pct": 0.5},
            indicators=[], rules=ALWAYS_BUY, status=StrategyStatus.ACTIVE,
        )  # fmt: skip
        Account.objects.filter(pk=self.account.pk).update(auto_trading=True)
        return StrategyAllocation.objects.create(account=self.account, strategy=strategy, created_by="admin")

    @cached_property
    def cycle(self) -> OrchestratorCycle:
        """An orchestrator cycle in which the allocation bought (and protected the fill)."""
        self.allocation  # noqa: B018  (exists before the cycle runs)
        cycle = orchestrator.orchestrator_run(now=TRADING_NOW).cycle
        assert cycle.acted == 1, cycle.summary
        return cycle

    @cached_property
    def manual_order(self) -> Order:
        """A market buy by the user with an Idempotency-Key: filled on paper, a fill and a position."""
        placement = order_place(
            account=self.account, symbol="BTCUSDT", side="BUY", type="MARKET", quantity=D("0.5"),
            user=self.user, created_by=self.user.username, idempotency_key="admin-walk-1",
        )  # fmt: skip
        assert placement.order.fills.exists(), placement.order.reject_reason
        return placement.order

    @cached_property
    def refusal(self) -> RiskRefusal:
        """A buy of far more than the cash pays for, refused by the risk manager."""
        placement = order_place(
            created_by="test",
            account=self.account,
            symbol="BTCUSDT",
            side="BUY",
            type="MARKET",
            quantity=D(1000),
        )
        assert placement.refusal is not None
        return placement.refusal

    @cached_property
    def state_change(self) -> AccountStateChange:
        """The kill switch pulled and released again, so the account still trades."""
        halted = account_halt(account=self.account, by=self.user, reason="halted to check the exchange")
        account_resume(account=self.account, by=self.user, reason="exchange checked")
        assert halted is not None
        return halted

    @cached_property
    def snapshot(self) -> PortfolioSnapshot:
        """The account's value at two slots (the account page draws its equity from two or more)."""
        portfolio_snapshot(account=self.account, now=TRADING_NOW - timedelta(minutes=5))
        return portfolio_snapshot(account=self.account, now=TRADING_NOW)

    @cached_property
    def reconciliation(self) -> Reconciliation:
        """What a reconciliation with the exchange records when the cash differed (no exchange here)."""
        reconciliation = Reconciliation.objects.create(
            account=self.account, status=JobStatus.COMPLETED, finished_at=TRADING_NOW,
            summary={"repairs": 1, "orders_checked": 2},
        )  # fmt: skip
        Repair.objects.create(
            reconciliation=reconciliation, account=self.account, kind=RepairKind.CASH,
            order=self.manual_order, before={"cash": "9948.87"}, after={"cash": "9950.00"},
            message="cash 9948.87 differed from the exchange balance 9950.00",
        )  # fmt: skip
        return reconciliation

    # --- operations ---------------------------------------------------------------------------

    @cached_property
    def schedules(self) -> None:
        """The declared periodic jobs, synced into the database scheduler as beat does on start."""
        sync_schedules()


def _group(world: AdminWorld) -> Group:
    group = Group.objects.create(name="operators")
    group.permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return group


def _scheduled(model: type[Model]) -> Callable[[AdminWorld], Model]:
    def made(world: AdminWorld) -> Model:
        world.schedules  # noqa: B018  (synced once, on first use)
        return model.objects.first()

    return made


def _health_snapshot(world: AdminWorld) -> HealthSnapshot:
    snapshot = snapshot_request(trigger=SnapshotTrigger.COMMAND)
    document = {
        "status": "degraded",
        "components": {
            "database": {"status": "healthy", "response_time_ms": 1.2},
            "external_apis": {"status": "degraded", "message": "binance unreachable"},
        },
    }
    HealthSnapshot.objects.filter(pk=snapshot.pk).update(
        status=JobStatus.COMPLETED, overall_status="degraded", document=document, worker="celery@test",
        finished_at=HISTORY_NOW,
    )  # fmt: skip
    return snapshot


def _probe(world: AdminWorld) -> ExternalApiProbe:
    return ExternalApiProbe.objects.create(
        name="binance", url="https://api.binance.com/api/v3/ping", reachable=False,
        message="URLError: no route to host", checked_at=HISTORY_NOW,
    )  # fmt: skip


def _training_run(world: AdminWorld) -> TrainingRun:
    model = world.ml_model
    report = {
        "summary": {"models_trained": 1, "promoted": 1},
        "series": [{"symbol": "BTCUSD", "timeframe": "1h", "models": [{"model_id": model.model_id}]}],
    }
    return TrainingRun.objects.create(
        slot=HISTORY_NOW.replace(hour=6, minute=0), status=JobStatus.COMPLETED, report=report,
        started_at=HISTORY_NOW, finished_at=HISTORY_NOW,
    )  # fmt: skip


def _promotion(world: AdminWorld) -> PromotionDecision:
    return PromotionDecision.objects.create(
        candidate=world.ml_model, metric="roc_auc", candidate_value=0.54,
        holdout_start=HISTORY_NOW - timedelta(hours=100), holdout_end=HISTORY_NOW, holdout_rows=100,
        deflated_sharpe=0.97, evidence={"min_deflated_sharpe": 0.95, "max_p_value": 0.05},
        promoted=True, reason="no champion yet; the deflated Sharpe ratio of its signal returns is 0.97",
    )  # fmt: skip


def _performance(world: AdminWorld) -> StrategyPerformance:
    world.cycle  # noqa: B018  (the allocation traded)
    return performance.performance_record(allocation=world.allocation, now=TRADING_NOW)


def _signal(world: AdminWorld) -> Signal:
    analysis = world.analysis
    return Signal.objects.create(
        analysis=analysis, instrument=analysis.instrument, timeframe="1h", time=analysis.last_candle_time,
        direction="long", strength=0.7, source="admin-walk", reason="RSI(14) crossed above 30",
    )  # fmt: skip


def _event(world: AdminWorld) -> MarketEvent:
    analysis = world.analysis
    return MarketEvent.objects.create(
        analysis=analysis, instrument=analysis.instrument, timeframe="1h", time=analysis.last_candle_time,
        kind=MarketEvent.Kind.GAP, magnitude=4.2, description="a gap of 4.2 ATR", details={"atr": 120.5},
    )  # fmt: skip


LOGIN = {
    "username": "trader",
    "ip_address": "10.0.0.1",
    "user_agent": "curl/8",
    "http_accept": "*/*",
    "path_info": "/api/auth/login",
}

ROW_MAKERS: dict[str, Callable[[AdminWorld], Model | None]] = {
    # people, tokens and the schedule
    "auth.User": lambda world: world.user,
    "auth.Group": _group,
    "knox.AuthToken": lambda world: AuthToken.objects.create(user=world.user)[0],
    # failed logins (django-axes)
    "axes.AccessAttempt": lambda world: AccessAttempt.objects.create(
        **LOGIN, get_data="", post_data="", failures_since_start=5
    ),
    "axes.AccessLog": lambda world: AccessLog.objects.create(**LOGIN),
    "axes.AccessFailureLog": lambda world: AccessFailureLog.objects.create(**LOGIN, locked_out=True),
    "django_celery_beat.PeriodicTask": _scheduled(PeriodicTask),
    "django_celery_beat.CrontabSchedule": _scheduled(CrontabSchedule),
    "django_celery_beat.IntervalSchedule": _scheduled(IntervalSchedule),
    "django_celery_beat.ClockedSchedule": lambda world: ClockedSchedule.objects.create(
        clocked_time=HISTORY_NOW
    ),
    "django_celery_beat.SolarSchedule": lambda world: SolarSchedule.objects.create(
        event="sunrise", latitude=D("51.5"), longitude=D("-0.12")
    ),
    # market
    "market.Instrument": lambda world: world.btc,
    "market.Candle": lambda world: Candle.objects.order_by(*CandleAdmin.ordering).first(),  # its list's first
    "market.MarketAnalysis": lambda world: world.analysis,
    "market.Signal": _signal,
    "market.MarketEvent": _event,
    # training
    "training.MLModel": lambda world: world.ml_model,
    "training.PromotionDecision": _promotion,
    "training.TrainingRun": _training_run,
    # strategies
    "strategies.Strategy": lambda world: world.strategy,
    "strategies.Backtest": lambda world: world.backtest,
    "strategies.OptimizationRun": lambda world: world.optimization,
    "strategies.StrategyDecision": lambda world: world.decision,
    "strategies.StrategyUpdateRun": lambda world: world.update_run,
    "strategies.GenerationRun": lambda world: world.generation,
    # trading
    "trading.Account": lambda world: world.account,
    "trading.StrategyAllocation": lambda world: world.allocation,
    "trading.OrchestratorCycle": lambda world: world.cycle,
    "trading.StrategyAction": lambda world: world.cycle.actions.first(),
    "trading.StrategyPerformance": _performance,
    "trading.Order": lambda world: world.manual_order,
    "trading.Fill": lambda world: world.manual_order.fills.first(),
    "trading.Position": lambda world: Position.objects.filter(
        account=world.manual_order.account, allocation=None
    ).first(),
    "trading.IdempotencyKey": lambda world: IdempotencyKey.objects.filter(order=world.manual_order).first(),
    "trading.RiskRefusal": lambda world: world.refusal,
    "trading.AccountStateChange": lambda world: world.state_change,
    "trading.PortfolioSnapshot": lambda world: world.snapshot,
    "trading.Reconciliation": lambda world: world.reconciliation,
    "trading.Repair": lambda world: world.reconciliation.repairs.first(),
    # llm and health
    "llm.LLMCall": lambda world: spend(tokens=1200, usd="0.0042"),
    "health.HealthSnapshot": _health_snapshot,
    "health.ExternalApiProbe": _probe,
}
