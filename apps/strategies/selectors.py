"""Reads of the strategies app: strategies and their records, candle windows, generation needs and runs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
from django.conf import settings
from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from apps.core import clock, ownership
from apps.core.models import JobStatus
from apps.market import selectors as market
from apps.market.domain.candles import parse_timeframe
from apps.market.models import Instrument
from apps.strategies import documents
from apps.strategies.models import (
    Backtest,
    DecisionKind,
    GenerationRun,
    OptimizationRun,
    Strategy,
    StrategyDecision,
    StrategySource,
    StrategyStatus,
    StrategyUpdateItem,
    StrategyUpdateRun,
    StrategyVersion,
    Trial,
)

RECENT_METRICS = (
    "start",
    "end",
    "total_return_pct",
    "buy_and_hold_return_pct",
    "sharpe_ratio",
    "max_drawdown_pct",
)


def strategy_list() -> QuerySet[Strategy]:
    """Every strategy: the system's view (the daily update, the orchestrator)."""
    return Strategy.objects.select_related("instrument", "current_version", "owner")


def strategies_visible(*, user: ownership.User | None) -> QuerySet[Strategy]:
    """The strategies ``user`` may see: their own and the system's; staff (and None, the system): all."""
    return ownership.visible_to(strategy_list(), user)


def strategy_get(*, strategy_id: str, user: ownership.User | None) -> Strategy:
    """The strategy with this id if ``user`` may see it; raises ``Strategy.DoesNotExist`` otherwise,
    exactly as for an id that does not exist."""
    return strategies_visible(user=user).get(strategy_id=strategy_id)


def version_list(*, strategy: Strategy) -> QuerySet[StrategyVersion]:
    return strategy.versions.order_by("-number")


def decision_list(*, strategy: Strategy | None = None) -> QuerySet[StrategyDecision]:
    decisions = StrategyDecision.objects.select_related("strategy")
    return decisions if strategy is None else decisions.filter(strategy=strategy)


def backtests_visible(*, user: ownership.User | None) -> QuerySet[Backtest]:
    """The backtests ``user`` may see: their own and the system's, of strategies they may see."""
    backtests = Backtest.objects.select_related("strategy__instrument", "version", "owner")
    return ownership.visible_to(backtests, user, "strategy")


def optimizations_visible(*, user: ownership.User | None) -> QuerySet[OptimizationRun]:
    """The optimisation runs ``user`` may see: their own and the system's, of strategies they may see."""
    runs = OptimizationRun.objects.select_related("strategy__instrument", "version", "owner")
    return ownership.visible_to(runs, user, "strategy")


def update_run_list() -> QuerySet[StrategyUpdateRun]:
    return StrategyUpdateRun.objects.all()


def update_run_detail_list(*, user: ownership.User | None) -> QuerySet[StrategyUpdateRun]:
    """Update runs with their items and decisions, narrowed to the strategies ``user`` may see."""
    visible = strategies_visible(user=user)
    return update_run_list().prefetch_related(
        Prefetch("items", StrategyUpdateItem.objects.filter(strategy__in=visible).select_related("strategy")),
        Prefetch("decisions", decision_list().filter(strategy__in=visible)),
    )


def generation_run_list() -> QuerySet[GenerationRun]:
    """Every generation run: the system's view."""
    return GenerationRun.objects.select_related("instrument", "owner").prefetch_related(
        "candidates__strategy"
    )


def generations_visible(*, user: ownership.User | None) -> QuerySet[GenerationRun]:
    """The generation runs ``user`` may see: their own and the system's (staff: all)."""
    return ownership.visible_to(generation_run_list(), user)


def market_versions(
    *, instrument: Instrument, timeframe: str, user: ownership.User | None
) -> QuerySet[StrategyVersion]:
    """The current versions of every strategy (any status) of a market that ``user`` may see."""
    strategies = strategies_visible(user=user).filter(instrument=instrument, timeframe=timeframe)
    return StrategyVersion.objects.filter(strategy__in=strategies, strategy__current_version=F("pk"))


def active_strategy_summaries(
    *, instrument: Instrument, timeframe: str, user: ownership.User | None
) -> list[dict[str, object]]:
    """The market's active strategies that ``user`` may see: name, type, document and the metrics of
    the newest completed backtest (None when there is none)."""
    summaries = []
    for strategy in strategies_visible(user=user).filter(
        instrument=instrument, timeframe=timeframe, status=StrategyStatus.ACTIVE
    ):
        backtest = strategy.backtests.filter(status=JobStatus.COMPLETED).order_by("-finished_at").first()
        version = strategy.current_version
        summaries.append(
            {
                "name": strategy.name,
                "type": strategy.type,
                "parameters": version.parameters,
                "rules": version.rules,
                "recent_metrics": None
                if backtest is None
                else {key: backtest.metrics.get(key) for key in RECENT_METRICS},
            }
        )
    return summaries


def has_history(*, strategy: Strategy) -> bool:
    """Whether anything was recorded about the strategy beyond its first version."""
    return (
        strategy.backtests.exists()
        or strategy.optimizations.exists()
        or strategy.decisions.exists()
        or strategy.versions.count() > 1
    )


# --- candles -------------------------------------------------------------------------------------


def series_problem(*, instrument: Instrument, timeframe: str) -> str | None:
    """Why a strategy cannot run on this instrument and timeframe (no candles), or None."""
    stored = market.candle_timeframes(instrument=instrument)
    if timeframe in stored:
        return None
    return (
        f"no {timeframe} candles are stored for {instrument.symbol} on {instrument.exchange}; "
        f"stored timeframes: {', '.join(sorted(stored)) or 'none'}"
    )


@dataclass(frozen=True)
class CandleWindow:
    """Candles of a window with earlier bars in front to warm indicators up; ``first`` is the
    position of the window's first bar in ``frame``."""

    frame: pd.DataFrame
    first: int

    @property
    def bars(self) -> int:
        return len(self.frame) - self.first

    @property
    def window(self) -> pd.DataFrame:
        return self.frame.iloc[self.first :]


def candle_window(
    *,
    instrument: Instrument,
    timeframe: str,
    warmup_bars: int,
    start: datetime | None = None,
    end: datetime | None = None,
    newest: int | None = None,
) -> CandleWindow:
    """The candles in [start, end] (or the ``newest`` ones up to ``end``) and up to ``warmup_bars``
    before them."""
    if newest is not None:
        frame = market.candles_frame(
            instrument=instrument, timeframe=timeframe, end=end, limit=newest + warmup_bars
        )
        return CandleWindow(frame, max(0, len(frame) - newest))
    if start is None:
        raise ValueError("candle_window needs start or newest")
    earliest = pd.Timestamp(start) - warmup_bars * parse_timeframe(timeframe).duration
    frame = market.candles_frame(instrument=instrument, timeframe=timeframe, start=earliest, end=end)
    first = int(frame.index.searchsorted(pd.Timestamp(start)))
    return CandleWindow(frame.iloc[max(0, first - warmup_bars) :], min(first, warmup_bars))


def newest_window(*, strategy: Strategy, version: StrategyVersion) -> CandleWindow:
    """The strategy's newest stored candle with the warm-up its rules need: what the orchestrator
    evaluates the version on."""
    return candle_window(
        instrument=strategy.instrument,
        timeframe=strategy.timeframe,
        warmup_bars=documents.warmup_bars(version.rules, [version.parameters]),
        newest=1,
    )


# --- the daily update's hook for strategy generation ----------------------------------------------


@dataclass(frozen=True)
class GenerationNeed:
    """A market that needs new strategies: too few active ones, or some retired today."""

    instrument: Instrument
    timeframe: str
    active: int
    retired_today: int

    def to_dict(self) -> dict[str, object]:
        return {
            "symbol": self.instrument.symbol,
            "exchange": self.instrument.exchange,
            "timeframe": self.timeframe,
            "active": self.active,
            "retired_today": self.retired_today,
        }


def strategies_needing_generation(
    *, day: date | None = None, instruments: Iterable[Instrument] | None = None
) -> list[GenerationNeed]:
    """Each active instrument's timeframes (or each of ``instruments``', active or not) with fewer than
    ``STRATEGY_MIN_ACTIVE`` active strategies or with strategies retired on ``day`` (UTC, default
    today): where new strategies should come from."""
    day = day or clock.now().date()
    counts = {
        (row["instrument"], row["timeframe"]): row
        for row in Strategy.objects.values("instrument", "timeframe").annotate(
            active=Count("pk", filter=Q(status=StrategyStatus.ACTIVE), distinct=True),
            retired_today=Count(
                "decisions",
                filter=Q(decisions__kind=DecisionKind.RETIRED, decisions__created_at__date=day),
                distinct=True,
            ),
        )
    }
    needs = []
    for instrument in market.instrument_list(active=True) if instruments is None else instruments:
        for timeframe in instrument.timeframes or market.candle_timeframes(instrument=instrument):
            row = counts.get((instrument.pk, timeframe), {"active": 0, "retired_today": 0})
            if row["active"] < settings.STRATEGY_MIN_ACTIVE or row["retired_today"]:
                needs.append(GenerationNeed(instrument, timeframe, row["active"], row["retired_today"]))
    return needs


# --- the trial ledger ------------------------------------------------------------------------------

GENERATION_LINEAGE = "generation"
MODEL_LINEAGE_PREFIX = "model:"


@dataclass(frozen=True)
class Family:
    """A research family of the trial ledger: trials on one market and timeframe of one lineage (see
    :class:`apps.strategies.models.Trial`)."""

    instrument_id: int
    timeframe: str
    lineage: str

    def trials(self) -> QuerySet[Trial]:
        return Trial.objects.filter(
            instrument_id=self.instrument_id, timeframe=self.timeframe, lineage=self.lineage
        )


@dataclass(frozen=True)
class FamilyTotals:
    """What the deflated Sharpe ratio needs of a family: how many trials, and the sample variance of
    their per-bar Sharpe ratios (a flat trial counts as 0; None with fewer than two trials)."""

    trials: int
    sharpe_variance: float | None


def strategy_family(*, strategy: Strategy) -> Family:
    """The family a strategy's trials belong to: a strategy generation proposed (LLM or template)
    stays in its market's generation family, so it is deflated by every candidate proposed there;
    any other strategy is its own lineage, across all its versions."""
    generated = strategy.source in (StrategySource.LLM, StrategySource.TEMPLATE)
    lineage = GENERATION_LINEAGE if generated else f"strategy:{strategy.strategy_id}"
    return Family(strategy.instrument_id, strategy.timeframe, lineage)


def generation_family(*, instrument: Instrument, timeframe: str) -> Family:
    return Family(instrument.pk, timeframe, GENERATION_LINEAGE)


def model_family(*, instrument_id: int, timeframe: str, model_type: str) -> Family:
    """The family of every model of one type trained on a market: each retrain is one of its trials."""
    return Family(instrument_id, timeframe, f"{MODEL_LINEAGE_PREFIX}{model_type}")


def family_totals(*, family: Family) -> FamilyTotals:
    """The family's trial count and Sharpe variance, as the database holds them now."""
    # Sums, not the database's VAR_SAMP: SQLite's fails on a single row. Per-bar Sharpe ratios are
    # small numbers, so the difference of sums loses nothing that matters here.
    sharpe = Coalesce("sharpe", Value(0.0))
    totals = family.trials().aggregate(trials=Count("pk"), total=Sum(sharpe), squares=Sum(sharpe * sharpe))
    count = totals["trials"]
    if count < 2:
        return FamilyTotals(count, None)
    total, squares = float(totals["total"]), float(totals["squares"])
    return FamilyTotals(count, max((squares - total * total / count) / (count - 1), 0.0))


def family_trials_visible(*, family: Family, user: ownership.User | None) -> QuerySet[Trial]:
    """The family's trials ``user`` may see (their own and the system's; staff: all), newest first;
    the family's count includes the others too."""
    return ownership.visible_to(family.trials().select_related("strategy", "owner"), user)


def activation_backtest(*, strategy: Strategy) -> Backtest | None:
    """The newest completed backtest of the strategy's current version that has a robustness block:
    the evidence its activation is judged on."""
    return (
        Backtest.objects.filter(
            strategy=strategy,
            version_id=strategy.current_version_id,
            status=JobStatus.COMPLETED,
            robustness__has_key="observations",
        )
        .order_by("-finished_at", "-pk")
        .first()
    )


def adopting_optimization(*, strategy: Strategy) -> OptimizationRun | None:
    """The optimisation whose best parameters became the strategy's current version (the daily
    update's ``params_adopted`` decision names it), or None when no optimisation chose them."""
    version = strategy.current_version
    if version is None or version.source != StrategySource.OPTIMIZER:
        return None
    decision = (
        StrategyDecision.objects.filter(
            strategy=strategy,
            kind=DecisionKind.PARAMS_ADOPTED,
            optimization__isnull=False,
            reason__startswith=f"version {version.number}:",
        )
        .select_related("optimization")
        .order_by("-id")
        .first()
    )
    return None if decision is None else decision.optimization
