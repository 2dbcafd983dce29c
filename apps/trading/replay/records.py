"""What a replay did, and undoing it: its summary, its abandoned jobs, and --reset."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from apps.core.jobs import jobs_abandon
from apps.market import selectors as market
from apps.market.models import Instrument
from apps.market.services import instruments as market_instruments
from apps.strategies import selectors as strategy_selectors
from apps.strategies.services.strategies import market_strategies_delete
from apps.trading import performance, selectors
from apps.trading.models import Account, OrchestratorCycle, Order, StrategyAllocation
from apps.trading.replay.bars import Replay
from apps.trading.replay.plan import (
    TRIGGER_PREFIX,
    ReplayInputError,
    is_replay_instrument,
    replay_accounts,
    replay_first_bar,
)
from apps.training import selectors as training_selectors
from apps.training.services import promotion as model_promotion


def replay_jobs_abandon(*, target: Instrument, accounts: list[Account], reason: str) -> int:
    """Fail the replay's unfinished jobs with ``reason`` (it stopped mid-bar), so that no sweeper
    sends them to a worker; returns how many."""
    return (
        jobs_abandon(rows=market.analysis_list().filter(instrument=target), reason=reason)
        + jobs_abandon(rows=training_selectors.model_list().filter(instrument=target), reason=reason)
        + jobs_abandon(rows=strategy_selectors.generation_run_list().filter(instrument=target), reason=reason)
        + jobs_abandon(
            rows=OrchestratorCycle.objects.filter(trigger__in=[f"{TRIGGER_PREFIX}{a.pk}" for a in accounts]),
            reason=reason,
        )
    )


@dataclass(frozen=True)
class AllocationResult:
    """One allocation's own book at the end: its P&L from its own fills, marked at the last price."""

    allocation: StrategyAllocation
    fills: int
    realised: Decimal
    unrealised: Decimal

    @property
    def total(self) -> Decimal:
        return self.realised + self.unrealised


@dataclass(frozen=True)
class ReplaySummary:
    """What the replay has done so far, all of it (a continued replay counts its earlier runs too)."""

    first_bar: datetime
    clock: datetime
    bars: int
    analyses: Counter[str]
    stale_analyses: int
    models: Counter[str]
    promotions: Counter[bool]
    decisions: Counter[str]
    generations: int
    generated: int
    cycles: int
    orders: Counter[str]
    fills: int
    allocations: list[AllocationResult]
    portfolio: selectors.Portfolio


def replay_summary(*, replay: Replay) -> ReplaySummary:
    """Counts of every job's outcomes on the target and the account, and each allocation's P&L."""
    target, account = replay.target, replay.account
    account.refresh_from_db()  # its cash and state moved under the row lock, on other instances
    analyses = market.analysis_list().filter(instrument=target)
    models = training_selectors.model_list().filter(instrument=target)
    decisions = strategy_selectors.decision_list().filter(strategy__instrument=target)
    generations = strategy_selectors.generation_run_list().filter(instrument=target)
    mark = selectors.last_price(instrument=target)
    results = []
    for allocation in account.allocations.select_related("strategy__instrument").order_by("pk"):
        state, fills = performance.strategy_position(allocation=allocation)
        unrealised = state.unrealised_pnl(mark) if mark is not None and state.quantity else Decimal(0)
        results.append(AllocationResult(allocation, fills, state.realised_pnl, unrealised))
    first_bar = replay_first_bar(target=target)
    return ReplaySummary(
        first_bar=first_bar,
        clock=replay.clock,
        bars=market.candle_count(instrument=target, timeframe=replay.plan.timeframe, start=first_bar),
        analyses=Counter(analyses.values_list("status", flat=True)),
        stale_analyses=analyses.filter(stale=True).count(),
        models=Counter(models.values_list("stage", flat=True)),
        promotions=Counter(
            training_selectors.promotion_decision_list()
            .filter(candidate__instrument=target)
            .values_list("promoted", flat=True)
        ),
        decisions=Counter(decisions.values_list("kind", flat=True)),
        generations=generations.count(),
        generated=sum(run.summary.get("kept", 0) for run in generations),
        cycles=OrchestratorCycle.objects.filter(trigger=replay.trigger).count(),
        orders=Counter(account.orders.values_list("status", flat=True)),
        fills=account.fills.count(),
        allocations=results,
        portfolio=selectors.portfolio(account=account),
    )


def replay_reset(*, symbol: str, target_exchange: str) -> list[str]:
    """Delete the replay on ``target_exchange``: its accounts with their ledgers and orchestrator
    cycles, the target's strategies, models and generation runs, and the target with its candles and
    analyses. Nothing else: a non-replay account with orders on the target, or an allocation of a
    target strategy on a non-replay account, stops it (ReplayInputError) before anything is deleted.
    Returns what was deleted, in words."""
    target = market.instrument_list().filter(symbol=symbol, exchange=target_exchange).first()
    accounts = replay_accounts(target_exchange=target_exchange)
    if target is not None and not is_replay_instrument(target):
        raise ReplayInputError(f"{target} is not a replay's instrument: --reset leaves it alone")
    if target is not None:
        orders = Order.objects.filter(instrument=target).exclude(account__in=accounts)
        allocations = StrategyAllocation.objects.filter(strategy__instrument=target).exclude(
            account__in=accounts
        )
        names = sorted(
            set(orders.values_list("account__name", flat=True))
            | set(allocations.values_list("account__name", flat=True))
        )
        if names:
            raise ReplayInputError(
                f"accounts that are not the replay's trade {target}: {', '.join(names)}; "
                "--reset deletes nothing"
            )
    done = []
    with transaction.atomic():
        for account in accounts:
            cycles, _ = OrchestratorCycle.objects.filter(trigger=f"{TRIGGER_PREFIX}{account.pk}").delete()
            account.fills.all().delete()
            account.orders.all().delete()
            account.positions.all().delete()
            done.append(f"account {account.name!r} (id {account.pk}) with its ledger and {cycles} cycles")
            account.delete()
        if target is not None:
            strategies = market_strategies_delete(instrument=target)
            models = model_promotion.instrument_models_delete(instrument=target)
            candles = (
                market.candle_count(instrument=target, timeframe=target.timeframes[0])
                if target.timeframes
                else 0
            )
            market_instruments.instrument_delete(instrument=target)
            done.append(f"{target} with {candles} candles, {strategies} strategies and {models} models")
    return done
