"""Playing one bar: its candle stored at its close, then every job on that moment, in this process."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from django.conf import settings

from apps.core import clock
from apps.core.models import JobStatus
from apps.llm.models import OFFLINE
from apps.market import selectors as market
from apps.market.models import Instrument, MarketAnalysis
from apps.market.services import analyses as market_analyses
from apps.market.services import candles as market_candles
from apps.strategies import selectors as strategy_selectors
from apps.strategies.models import (
    DecisionKind,
    GenerationRun,
    JobTrigger,
    StrategyDecision,
    StrategyStatus,
)
from apps.strategies.services.backtests import external_series_prepare
from apps.strategies.services.daily_update import strategy_daily_update
from apps.strategies.services.generation import generation_create, generation_run
from apps.trading import orchestrator, performance
from apps.trading.models import Account, Fill, OrchestratorCycle, StrategyAllocation
from apps.trading.replay.plan import EPOCH, TRIGGER_PREFIX, UPDATE_HOUR, ReplayPlan
from apps.trading.services.allocations import allocation_wind_down
from apps.trading.services.lifecycle import WIND_DOWN, lifecycle_plan
from apps.trading.services.paper_matching import paper_orders_match
from apps.trading.services.snapshots import portfolio_snapshot
from apps.training.services import training_runs


@dataclass
class Replay:
    """A replay under way: its plan, target and account, when its periodic jobs run, and what it has
    already reported."""

    plan: ReplayPlan
    target: Instrument
    account: Account
    train_every: int  # hours; 0: never
    update_every: int  # hours; 0: never
    clock: datetime = field(init=False)  # the close of the newest bar stored
    last_fill: int = field(init=False)
    names: dict[int, str] = field(init=False)  # the strategy name of each allocation of the account

    def __post_init__(self) -> None:
        newest = market.newest_candle_time(instrument=self.target, timeframe=self.plan.timeframe)
        self.clock = newest + self.plan.duration if newest is not None else EPOCH
        self.last_fill = self.account.fills.order_by("-pk").values_list("pk", flat=True).first() or 0
        self.names = dict(self.account.allocations.values_list("pk", "strategy__name"))

    @property
    def trigger(self) -> str:
        return f"{TRIGGER_PREFIX}{self.account.pk}"


@dataclass(frozen=True)
class BarReport:
    """What one replayed bar did."""

    moment: datetime
    close: float
    fills: list[Fill]
    analysis: MarketAnalysis | None
    training: dict[str, Any] | None
    decisions: list[StrategyDecision]
    generations: list[GenerationRun]
    cycles: list[OrchestratorCycle]


def _crossed(before: datetime, now: datetime, hours: int, offset_hours: int = 0) -> bool:
    """Whether a boundary of every ``hours`` hours from midnight UTC (plus ``offset_hours``) lies in
    (before, now]: a scheduled job falls due between two bars."""
    if hours <= 0:
        return False
    period, offset = timedelta(hours=hours), timedelta(hours=offset_hours)
    return (now - offset - EPOCH) // period > (before - offset - EPOCH) // period


def bar_play(*, replay: Replay, open_time: pd.Timestamp, frame: pd.DataFrame) -> BarReport:
    """Store one bar on the clock of its close and run every job that falls due (see the module
    docstring); ``frame`` is that bar's row of the source."""
    plan, target, account = replay.plan, replay.target, replay.account
    moment, before = plan.close_of(open_time), replay.clock
    with clock.replaying(moment):
        market_candles.candles_store(instrument=target, timeframe=plan.timeframe, frame=frame)
        replay.clock = moment
        paper_orders_match(instrument=target)
        analysis = _analyse(replay, moment)
        trained = (
            training_runs.training_series_run(instrument=target, timeframe=plan.timeframe, fetch=False)
            if _crossed(before, moment, replay.train_every)
            else None
        )
        decisions, generations = (
            _update(replay, moment)
            if _crossed(before, moment, replay.update_every, UPDATE_HOUR)
            else ([], [])
        )
        cycles = _orchestrate(replay, moment)
        portfolio_snapshot(account=account, now=moment)
        performance.performance_record_all(now=moment, account=account)
    fills = list(account.fills.filter(pk__gt=replay.last_fill).order_by("pk").select_related("order"))
    if fills:
        replay.last_fill = fills[-1].pk
    return BarReport(
        moment=moment,
        close=float(frame["close"].iloc[-1]),
        fills=fills,
        analysis=analysis,
        training=trained,
        decisions=decisions,
        generations=generations,
        cycles=cycles,
    )


def _analyse(replay: Replay, moment: datetime) -> MarketAnalysis | None:
    """The slot's analysis of the target, unless the slot has one (bars shorter than 30 minutes)."""
    row = market_analyses.analysis_request(
        instrument=replay.target, timeframe=replay.plan.timeframe, slot=market_analyses.analysis_slot(moment)
    )
    if row.status != JobStatus.PENDING:
        return None
    return market_analyses.analysis_run(analysis_id=row.pk, fetch=False, commentary=False)


def _update(replay: Replay, moment: datetime) -> tuple[list[StrategyDecision], list[GenerationRun]]:
    """The daily update of the target's active strategies, then a generation where the market needs
    one; returns the decisions dated ``moment`` and the generation runs."""
    target, timeframe = replay.target, replay.plan.timeframe
    strategies = strategy_selectors.strategy_list().filter(
        instrument=target, timeframe=timeframe, status=StrategyStatus.ACTIVE
    )
    for strategy in strategies:
        strategy_daily_update(strategy=strategy, now=moment)
    # The lifecycle's other half on the replay's own account: a retired copy's book is closed at the
    # next bar. (Its allocating half would reach strategies of other markets, on other clocks.)
    for step in lifecycle_plan(account=replay.account):
        if step.action == WIND_DOWN and step.allocation is not None:
            allocation = StrategyAllocation.objects.get(pk=step.allocation)
            allocation_wind_down(allocation=allocation, by="replay", reason=step.reason)
    generations = []
    for need in strategy_selectors.strategies_needing_generation(day=moment.date(), instruments=[target]):
        if need.timeframe != timeframe:
            continue
        created = generation_create(
            instrument=target,
            timeframe=timeframe,
            count=settings.GENERATION_DAILY_COUNT,
            provider=OFFLINE,
            trigger=JobTrigger.DAILY_UPDATE,
        )
        generations.append(generation_run(run_id=created.pk) or created)
    decisions = list(
        strategy_selectors.decision_list()
        .filter(strategy__instrument=target, created_at=moment)
        .exclude(kind=DecisionKind.EVALUATED)
        .order_by("pk")
    )
    return decisions, generations


def _orchestrate(replay: Replay, moment: datetime) -> list[OrchestratorCycle]:
    result = orchestrator.orchestrator_run(trigger=replay.trigger, now=moment, account=replay.account)
    cycles = [result.cycle]
    if result.series_needed:
        for strategy_id in result.series_needed:
            external_series_prepare(strategy_id=strategy_id)
        # Live, the next cycle (five minutes later) acts on the same candle once its series is stored.
        again = orchestrator.orchestrator_run(trigger=replay.trigger, now=moment, account=replay.account)
        cycles.append(again.cycle)
    return cycles
