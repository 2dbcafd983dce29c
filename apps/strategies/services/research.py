"""The research report: run the strategy generation pipeline over stored history, as the scheduled
generation runs it, and count what survived each gate.

Each market series is asked once per provider (``offline``: the templates) through the same services
the daily update uses (``generation_create`` then ``generation_run``, in this process, owned by the
system), so every candidate backtested is recorded in the market's generation family of the trial
ledger and a kept one becomes a strategy with its ``generated`` decision. Nothing is reimplemented:
the report reads back the run's stored candidates.

A candidate *passed the holdout* when its holdout beat buy-and-hold with a Sharpe ratio of at least
``GENERATION_MIN_SHARPE`` (``holdout_verdict``, the pipeline's own test); it *survived deflation* when
it was kept, which needs its holdout Sharpe ratio deflated by every trial of the family to reach
``STRATEGY_MIN_DEFLATED_SHARPE``. No optimisation chooses a candidate's parameters, so no PBO applies.
Each run adds its candidates to the ledger: a second report deflates by the first one's trials too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings

from apps.market.models import Instrument
from apps.strategies import selectors
from apps.strategies.errors import raise_if_problems
from apps.strategies.generation.schema import MAX_CANDIDATES
from apps.strategies.models import CandidateOutcome, GenerationRun, JobTrigger, TrialSource
from apps.strategies.services.generation import generation_create, generation_run, holdout_verdict


@dataclass(frozen=True)
class CandidateLine:
    """A candidate that passed the holdout: its holdout numbers, its deflated Sharpe ratio and what
    became of it."""

    name: str
    outcome: str
    holdout_return_pct: float
    buy_and_hold_return_pct: float
    holdout_sharpe: float | None
    holdout_bars: int | None
    psr: float | None
    deflated_sharpe: float | None
    trials: int | None
    reason: str
    strategy_id: str | None


@dataclass(frozen=True)
class SeriesResult:
    """One generation run of one market series and provider, counted."""

    symbol: str
    exchange: str
    timeframe: str
    provider: str
    run_id: int
    status: str
    error: str
    provider_used: str
    proposed: int
    backtested: int
    passed_holdout: int
    survived_deflation: int
    family_trials_before: int
    family_trials_after: int
    passed: list[CandidateLine] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def research_report(
    *, series: Sequence[tuple[Instrument, str]], providers: Sequence[str], count: int
) -> list[SeriesResult]:
    """Run generation for every (instrument, timeframe) of ``series`` and every provider, in order,
    each run created just before it runs (a PENDING row left waiting would be sent to a worker), and
    count each run. Side effects: those of ``generation_run`` (LLM calls, candidates, trials, kept
    strategies). Raises StrategyInputError, before any run, for a series without candles, a provider
    not configured or a count outside 1..MAX_CANDIDATES."""
    _check(series=series, providers=providers, count=count)
    results = []
    for instrument, timeframe in series:
        for provider in providers:
            run = generation_create(
                instrument=instrument,
                timeframe=timeframe,
                count=count,
                provider=provider,
                trigger=JobTrigger.COMMAND,
            )
            results.append(_run_and_count(run, provider))
    return results


def _check(*, series: Sequence[tuple[Instrument, str]], providers: Sequence[str], count: int) -> None:
    """``generation_create``'s checks for every run at once, so bad input starts none."""
    problems: dict[str, list[str]] = {}
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CANDIDATES:
        problems["count"] = [f"must be a whole number from 1 to {MAX_CANDIDATES}, got {count!r}"]
    if unknown := [provider for provider in providers if provider not in settings.LLM_PROVIDERS]:
        problems["provider"] = [
            f"{', '.join(map(repr, unknown))} not configured; configured: {', '.join(settings.LLM_PROVIDERS)}"
        ]
    missing = [
        problem
        for instrument, timeframe in series
        if (problem := selectors.series_problem(instrument=instrument, timeframe=timeframe))
    ]
    if missing:
        problems["timeframe"] = missing
    raise_if_problems(problems)


def _run_and_count(run: GenerationRun, provider: str) -> SeriesResult:
    family = selectors.generation_family(instrument=run.instrument, timeframe=run.timeframe)
    before = selectors.family_totals(family=family).trials
    generation_run(run_id=run.pk)
    run.refresh_from_db()
    candidates = list(run.candidates.select_related("strategy").order_by("index"))
    passed = [
        c
        for c in candidates
        if c.holdout_metrics is not None
        and holdout_verdict(c.holdout_metrics, settings.GENERATION_MIN_SHARPE) is None
    ]
    recorded = family.trials().filter(source=TrialSource.CANDIDATE, key__startswith=f"candidate:{run.pk}:")
    return SeriesResult(
        symbol=run.instrument.symbol,
        exchange=run.instrument.exchange,
        timeframe=run.timeframe,
        provider=provider,
        run_id=run.pk,
        status=run.status,
        error=run.error,
        provider_used=run.provider_used,
        proposed=len(candidates),
        backtested=recorded.count(),
        passed_holdout=len(passed),
        survived_deflation=sum(c.outcome == CandidateOutcome.KEPT for c in candidates),
        family_trials_before=before,
        family_trials_after=selectors.family_totals(family=family).trials,
        passed=[
            CandidateLine(
                name=c.name,
                outcome=c.outcome,
                holdout_return_pct=c.holdout_metrics["total_return_pct"],
                buy_and_hold_return_pct=c.holdout_metrics["buy_and_hold_return_pct"],
                holdout_sharpe=c.holdout_metrics["sharpe_ratio"],
                holdout_bars=c.robustness.get("observations"),
                psr=c.robustness.get("psr"),
                deflated_sharpe=c.robustness.get("deflated_sharpe"),
                trials=c.robustness.get("trials"),
                reason=c.reason,
                strategy_id=c.strategy.strategy_id if c.strategy else None,
            )
            for c in passed
        ],
    )
