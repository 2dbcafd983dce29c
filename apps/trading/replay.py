"""The replay: stored history played as live closed candles, bar by bar, on the replay clock.

A replay copies a stored candle series (the *source*: BTCUSD 1h on coinbase, shipped with the
project) into an instrument of its own (the *target*: the same symbol under another exchange id,
``replay`` by default), one bar at a time. For each bar it sets the market clock
(:mod:`apps.core.clock`) to the moment the bar closes, and runs on that moment, in this order:

1. the bar is stored through ``candles_store``, which refuses a bar that has not closed by then;
2. resting paper orders are matched against it;
3. the market analysis of the target, at most once per 30-minute slot (every bar on 1h);
4. training of the target series, each time a ``train_every`` boundary passes (00, 06, 12 and
   18 UTC for 6 hours, as scheduled);
5. the daily update of the target's active strategies each time an ``update_every`` boundary
   passes (02:00 UTC for 24 hours, as scheduled), then the generation of candidates where the
   market has too few active strategies or retired some that day;
6. an orchestrator cycle for the replay's account (and a second one on the same moment when a
   strategy waited for its model series: the next 5-minute cycle would act on the same candle);
7. a portfolio snapshot of the account and a performance record of each of its allocations.

**No look-ahead.** The target holds only the bars already played, and every job reads the target:
none can see a bar before the clock has passed its close.

**Its own market and account only.** The scheduled jobs each cover every market and account: an
analysis per active instrument, a training run per slot and an update run per day over all of
them, a cycle over every enabled allocation. Run on the replay clock they would analyse, train,
evaluate, retire and trade the other markets at a moment of the past with the data of its future.
The replay calls instead, for its own market and account, the functions those jobs are made of
(``analysis_request``/``analysis_run``, ``training_series_run``, ``strategy_daily_update`` with
``generation_create``/``generation_run``, ``orchestrator_run(account=...)``, ``portfolio_snapshot``,
``performance_record_all(account=...)``); no training run or update run row is made for it. The
target is inactive, so the scheduled jobs of a running system leave it alone.

**In this process, nothing through the broker.** Each job runs here, on the replay clock, as soon as
its row exists; no message is sent to a worker, which would run it on the wall clock. A replay
stopped mid-bar fails what it left unfinished, with the reason (:func:`replay_jobs_abandon`), so
that no sweeper sends it to a worker afterwards.

**Offline.** No candle is fetched, the analysis asks for no commentary and the generation uses the
offline templates: an LLM knows what happened after the moment replayed.

**Strategies** are copies, on the target, of stored strategies (the demo strategies by default):
a strategy trades the instrument it names, and the originals keep trading theirs. The replay's
paper account holds the target's quote currency, has auto-trading on and no order-rate limit
(a replay plays hours of orders in seconds of wall clock). Running again continues where the
replay stopped; :func:`replay_reset` deletes the target and the replay's accounts with everything
recorded about them, and nothing else.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from apps.core import clock
from apps.core.jobs import jobs_abandon
from apps.core.models import JobStatus
from apps.llm.models import OFFLINE
from apps.market import selectors as market
from apps.market.domain.candles import CandleError, parse_timeframe
from apps.market.models import Instrument, MarketAnalysis
from apps.market.services import analyses as market_analyses
from apps.market.services import candles as market_candles
from apps.market.services import instruments as market_instruments
from apps.strategies import selectors as strategy_selectors
from apps.strategies.models import (
    DecisionKind,
    GenerationRun,
    JobTrigger,
    Strategy,
    StrategyDecision,
    StrategyStatus,
)
from apps.strategies.services.backtests import external_series_prepare
from apps.strategies.services.daily_update import strategy_daily_update
from apps.strategies.services.generation import generation_create, generation_run
from apps.strategies.services.strategies import decision_record, market_strategies_delete, strategy_create
from apps.trading import orchestrator, performance, selectors
from apps.trading.models import Account, AccountKind, Fill, OrchestratorCycle, Order, StrategyAllocation
from apps.trading.services.accounts import account_create
from apps.trading.services.allocations import allocation_wind_down
from apps.trading.services.lifecycle import WIND_DOWN, lifecycle_plan
from apps.trading.services.paper_matching import paper_orders_match
from apps.trading.services.snapshots import portfolio_snapshot
from apps.training import selectors as training_selectors
from apps.training.services import promotion as model_promotion
from apps.training.services import training_runs

DEMO_STRATEGIES = Path(settings.BASE_DIR) / "fixtures" / "strategies" / "demo_strategies.json"
DEFAULT_BARS = 168  # a week of hourly bars
# Enough for the slowest demo indicator, a training lookback with a holdout the promotion accepts,
# the daily update's window and a generation holdout of more than 100 bars.
DEFAULT_WARMUP_BARS = 2000
UPDATE_HOUR = 2  # the daily update's hour (UTC), as scheduled
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# An orchestrator cycle's trigger names the replay's account, so that its reset finds its cycles.
TRIGGER_PREFIX = selectors.REPLAY_TRIGGER  # health leaves these cycles out


class ReplayInputError(ValueError):
    """Bad replay input (unknown symbol, too little history, bad dates); nothing was written."""


NOTE_PREFIX = "replay of "
NOTE_TIME = "%Y-%m-%dT%H:%MZ"


def _series_note(source: Instrument, timeframe: str) -> str:
    return f"{NOTE_PREFIX}{source.symbol} on {source.exchange} {timeframe} from "


def is_replay_instrument(instrument: Instrument) -> bool:
    """Whether the instrument is a replay's target: its ``source`` says what it replays."""
    return instrument.source.startswith(NOTE_PREFIX)


def replay_first_bar(*, target: Instrument) -> datetime:
    """The open time of the first bar the replay played after its warm-up (its target's note)."""
    return datetime.strptime(target.source.rsplit(" from ", 1)[1], NOTE_TIME).replace(tzinfo=UTC)


@dataclass(frozen=True)
class ReplayPlan:
    """A validated replay: the source series, the bars to seed the target with before the first
    replayed bar (none when it continues), and the bars to play, by open time."""

    source: Instrument
    timeframe: str
    target_exchange: str
    target: Instrument | None  # the existing target a replay continues
    warmup: pd.DatetimeIndex
    bars: pd.DatetimeIndex

    @property
    def duration(self) -> timedelta:
        return parse_timeframe(self.timeframe).duration.to_pytimedelta()

    def close_of(self, open_time: pd.Timestamp) -> datetime:
        return open_time.to_pydatetime() + self.duration


def replay_plan(
    *,
    source_symbol: str,
    source_exchange: str,
    timeframe: str,
    target_exchange: str,
    start: datetime | None = None,
    end: datetime | None = None,
    bars: int | None = None,
    warmup_bars: int,
    fresh: bool = False,
) -> ReplayPlan:
    """Check the input against the stored data and say what the replay will play; writes nothing.

    Bars are the source's bars that open at or after ``start`` and close by ``end``. Without
    ``start`` and ``end`` the replay plays the source's last ``bars`` (default DEFAULT_BARS); with
    one of them, ``bars`` from ``start`` or up to ``end``. When the target exists (``fresh`` False)
    the replay continues after its newest bar instead, and ``start`` is refused. Raises
    ReplayInputError saying what is wrong.
    """
    try:
        source = market.instrument_resolve(symbol=source_symbol, exchange=source_exchange)
        duration = parse_timeframe(timeframe).duration
    except (market.InstrumentNotFound, CandleError) as error:
        raise ReplayInputError(str(error)) from None
    if is_replay_instrument(source):
        raise ReplayInputError(f"{source} is itself a replay's instrument; replay the series it copies")
    if target_exchange == source.exchange:
        raise ReplayInputError("the target exchange must differ from the source's: the replay writes to it")
    if bars is not None and bars < 1:
        raise ReplayInputError(f"--bars must be at least 1, got {bars}")
    if bars is not None and start is not None and end is not None:
        raise ReplayInputError("give --bars, or --start and --end, not all three")
    if warmup_bars < 1:
        # Strategies are made for a market with candles, and indicators need history anyway.
        raise ReplayInputError(f"--warmup-bars must be at least 1, got {warmup_bars}")
    if start is not None and end is not None and start >= end:
        raise ReplayInputError(f"--start {start:%Y-%m-%d %H:%M} is not before --end {end:%Y-%m-%d %H:%M}")
    times = market.candle_times(instrument=source, timeframe=timeframe)
    if len(times) == 0:
        stored = ", ".join(market.candle_timeframes(instrument=source)) or "none"
        raise ReplayInputError(f"no {timeframe} candles of {source} are stored (stored timeframes: {stored})")
    target = market.instrument_list().filter(symbol=source.symbol, exchange=target_exchange).first()
    if target is not None and not is_replay_instrument(target):
        raise ReplayInputError(
            f"{target} exists and is not a replay's ({target.source or 'no source'}); "
            "choose another --target-exchange"
        )
    if target is not None and not fresh and not target.source.startswith(_series_note(source, timeframe)):
        raise ReplayInputError(
            f"{target} replays another series ({target.source}); add --reset to replay {source} {timeframe}"
        )
    if target is not None and not fresh:
        return _continued(source, timeframe, target, times, start, end, bars)
    closes = times + duration
    if start is not None:
        first = int(times.searchsorted(pd.Timestamp(start)))
        last = (
            first + (bars or DEFAULT_BARS)
            if end is None
            else int(closes.searchsorted(pd.Timestamp(end), "right"))
        )
    else:
        last = len(times) if end is None else int(closes.searchsorted(pd.Timestamp(end), "right"))
        first = last - (bars or DEFAULT_BARS)
    span = f"{times[0]:%Y-%m-%d %H:%M} .. {times[-1]:%Y-%m-%d %H:%M} UTC"
    if first < 0 or last > len(times) or first >= last:
        wanted = f"{bars or DEFAULT_BARS} bars" if start is None or end is None else "bars"
        raise ReplayInputError(
            f"the {timeframe} candles of {source} ({span}) do not hold the {wanted} asked for; "
            "choose --start, --end or --bars within them"
        )
    if first < warmup_bars:
        raise ReplayInputError(
            f"only {first} {timeframe} bars of {source} precede {times[first]:%Y-%m-%d %H:%M} UTC; "
            f"--warmup-bars {warmup_bars} needs {warmup_bars} (the history starts {times[0]:%Y-%m-%d %H:%M})"
        )
    return ReplayPlan(
        source, timeframe, target_exchange, None, times[first - warmup_bars : first], times[first:last]
    )


def _continued(
    source: Instrument,
    timeframe: str,
    target: Instrument,
    times: pd.DatetimeIndex,
    start: datetime | None,
    end: datetime | None,
    bars: int | None,
) -> ReplayPlan:
    newest = market.newest_candle_time(instrument=target, timeframe=timeframe)
    duration = parse_timeframe(timeframe).duration
    clock_at = "no bar" if newest is None else f"{newest + duration:%Y-%m-%d %H:%M} UTC"
    if start is not None:
        raise ReplayInputError(
            f"the replay into {target} stands at {clock_at}: run without --start to continue where it "
            "stopped, or add --reset to start again"
        )
    remaining = times[times > pd.Timestamp(newest)] if newest is not None else times
    if end is not None:
        remaining = remaining[remaining + duration <= pd.Timestamp(end)]
    elif bars is None:
        bars = DEFAULT_BARS
    remaining = remaining[:bars] if bars is not None else remaining
    if len(remaining) == 0:
        raise ReplayInputError(
            f"the replay into {target} stands at {clock_at}: no bar of {source} {timeframe} is left to "
            "play (or none closes by --end); add --reset to start again"
        )
    return ReplayPlan(source, timeframe, target.exchange, target, times[:0], remaining)


def replay_account_find(
    *, owner: AbstractBaseUser, name: str, target_exchange: str, quote: str
) -> Account | None:
    """The owner's account ``name`` if it is a replay's (a paper account on the target exchange in
    the target's currency), None if there is none; ReplayInputError for any other account."""
    account = Account.objects.filter(owner=owner, name=name).first()
    if account is None:
        return None
    if account.kind != AccountKind.PAPER or account.exchange != target_exchange:
        raise ReplayInputError(
            f"account {name!r} of {owner} exists and is not a replay account (it is a {account.kind} account "
            f"on {account.exchange}); choose another --account"
        )
    if account.quote_currency != quote:
        raise ReplayInputError(
            f"account {name!r} holds {account.quote_currency}; the replayed market is quoted in {quote}"
        )
    return account


def replay_accounts(*, target_exchange: str) -> list[Account]:
    """Every replay account on the target exchange (paper accounts carrying its exchange id)."""
    return list(Account.objects.filter(kind=AccountKind.PAPER, exchange=target_exchange).order_by("pk"))


def demo_strategies() -> list[Strategy]:
    """The demo strategies of ``fixtures/strategies`` as stored by ``load_demo_strategies``."""
    found = []
    for entry in json.loads(DEMO_STRATEGIES.read_text()):
        strategy = (
            strategy_selectors.strategy_list()
            .filter(
                name=entry["name"],
                instrument__symbol=entry["symbol"],
                instrument__exchange=entry["exchange"],
                timeframe=entry["timeframe"],
            )
            .first()
        )
        if strategy is not None:
            found.append(strategy)
    return found


def source_frame(*, plan: ReplayPlan) -> pd.DataFrame:
    """The source's rows of the bars to play, read once."""
    return market.candles_frame(
        instrument=plan.source, timeframe=plan.timeframe, start=plan.bars[0], end=plan.bars[-1]
    )


def replay_target_create(*, plan: ReplayPlan) -> Instrument:
    """Create the target and store the warm-up bars, on the clock of the last one's close."""
    target = market_instruments.instrument_copy_create(
        source=plan.source,
        exchange=plan.target_exchange,
        timeframes=[plan.timeframe],
        note=f"{_series_note(plan.source, plan.timeframe)}{plan.bars[0].to_pydatetime():{NOTE_TIME}}",
    )
    if len(plan.warmup):
        frame = market.candles_frame(
            instrument=plan.source, timeframe=plan.timeframe, start=plan.warmup[0], end=plan.warmup[-1]
        )
        with clock.replaying(plan.close_of(plan.warmup[-1])):
            market_candles.candles_store(instrument=target, timeframe=plan.timeframe, frame=frame)
    return target


def replay_account_create(
    *, owner: AbstractBaseUser, name: str, target: Instrument, cash: Decimal
) -> Account:
    """The replay's paper account: the target's exchange and currency, auto-trading on and no order
    rate limit (a replay places hours of orders in seconds of wall clock)."""
    return account_create(
        owner=owner,
        name=name,
        kind=AccountKind.PAPER,
        starting_cash=cash,
        quote_currency=target.quote,
        exchange=target.exchange,
        auto_trading=True,
        max_orders_per_minute=None,
    )


def strategy_copy(*, original: Strategy, target: Instrument, timeframe: str) -> Strategy:
    """An active copy of the strategy's current version trading the target, owned by the original's
    owner (a copy of the system's is the system's), with a decision saying where it comes from."""
    version = original.current_version
    copy = strategy_create(
        name=f"{original.name} (replay)"[:100],
        type=original.type,
        instrument=target,
        timeframe=timeframe,
        parameters=version.parameters,
        indicators=version.indicators,
        rules=version.rules,
        status=StrategyStatus.ACTIVE,
        owner=original.owner,
    )
    decision_record(
        copy,
        DecisionKind.ACTIVATED,
        f"copied from {original.strategy_id} v{version.number} to trade {target}",
        {"original": original.strategy_id, "version": version.number},
        actor="replay",
    )
    return copy


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
