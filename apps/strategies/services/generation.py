"""Strategy generation runs: ask an LLM (or the offline templates) for candidates, validate each,
backtest it on a training window and a later holdout window, and keep only those that beat
buy-and-hold there and whose holdout Sharpe ratio survives deflation by every trial of the market's
generation family (``STRATEGY_MIN_DEFLATED_SHARPE``). Every candidate backtested is recorded in that
family's trial ledger, kept or not, before any of them is judged.

The market context goes to the model as data; its answer is parsed as JSON and validated against
the answer schema (``apps.strategies.generation.schema``); nothing in it is ever evaluated as code.
Every candidate is stored with its outcome, reason and numbers, kept or not.

A candidate with a parameter no rule reads (``rsi_oversold: 30`` beside ``RSI < 30``) is judged all
the same and kept as proposed, with the warning on the candidate, in its ``generated`` decision and on
the strategy: the parameter changes no signal, so the backtests are evidence for the document either
way, and dropping it would store something other than what was proposed and judged. It is no new
strategy either: duplicates are compared on the parameters the rules read.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.core import ownership
from apps.core.jobs import Interrupted, job_claimed, job_complete, job_fail, job_progress
from apps.llm.errors import LLMUnavailableError
from apps.llm.models import OFFLINE
from apps.llm.services import LLMResult, llm_complete_json
from apps.market import selectors as market
from apps.market.domain.analysis import analyse
from apps.market.domain.candles import parse_timeframe
from apps.market.models import Instrument
from apps.strategies import documents, selectors
from apps.strategies.engine import BacktestReport
from apps.strategies.engine.robustness import ReturnMoments, equity_moments
from apps.strategies.errors import StrategyInputError
from apps.strategies.generation.schema import (
    INSTRUCTIONS,
    MAX_CANDIDATES,
    SYSTEM,
    TEMPLATE,
    TEMPLATE_VERSION,
    answer_schema,
    candidate_document,
    document_key,
    validate_answer,
)
from apps.strategies.generation.templates import offline_candidates
from apps.strategies.models import (
    RUN_GENERATION,
    CandidateOutcome,
    DecisionKind,
    GenerationCandidate,
    GenerationRun,
    JobTrigger,
    Strategy,
    StrategySource,
    StrategyStatus,
    StrategyUpdateRun,
    StrategyVersion,
    TrialSource,
)
from apps.strategies.selectors import CandleWindow
from apps.strategies.services.backtests import (
    DEFAULT_CAPITAL,
    DEFAULT_COMMISSION,
    EVALUATION_METRICS,
    strategy_report,
)
from apps.strategies.services.strategies import (
    DAILY_UPDATE,
    GENERATION,
    decision_record,
    strategy_create,
    strategy_status_set,
)
from apps.strategies.services.trials import (
    TrialRecord,
    deflated_tests,
    deflation_verdict,
    gate_numbers,
    trials_record,
)

logger = logging.getLogger(__name__)

CONTEXT_BARS = 500  # newest bars the market context is computed from
MIN_HOLDOUT_BARS = 100


def generation_create(
    *,
    instrument: Instrument,
    timeframe: str,
    count: int,
    provider: str | None = None,
    trigger: str = JobTrigger.API,
    update_run: StrategyUpdateRun | None = None,
    owner: ownership.User | None = None,
) -> GenerationRun:
    """Store a PENDING generation run owned by ``owner`` (the requesting user; None: the system, the
    daily update); does not run it. The strategies it keeps will be the owner's.

    Raises, creating nothing: ``ownership.PermissionRequired`` when the owner may not start
    generation (LLM calls cost money: the researchers group, staff), StrategyInputError for a count
    outside 1..MAX_CANDIDATES, a provider not in LLM_PROVIDERS, or a market without candles in
    ``timeframe``, and ``ownership.TooManyJobs`` when the owner's cap is reached.
    """
    ownership.permission_check(user=owner, permission=RUN_GENERATION, work="starting strategy generation")
    problems: dict[str, list[str]] = {}
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CANDIDATES:
        problems["count"] = [f"must be a whole number from 1 to {MAX_CANDIDATES}, got {count!r}"]
    if provider and provider not in settings.LLM_PROVIDERS:
        problems["provider"] = [
            f"{provider!r} is not configured; configured: {', '.join(settings.LLM_PROVIDERS)}"
        ]
    if problem := selectors.series_problem(instrument=instrument, timeframe=timeframe):
        problems["timeframe"] = [problem]
    if problems:
        raise StrategyInputError(problems)
    with ownership.job_slot(owner=owner):
        return GenerationRun.objects.create(
            instrument=instrument,
            timeframe=timeframe,
            count=count,
            provider_requested=provider or "",
            trigger=trigger,
            update_run=update_run,
            owner=owner,
        )


def generation_run(*, run_id: int) -> GenerationRun | None:
    """Claim the run, build the market context, ask for candidates and judge each one.

    Side effects: LLM requests (``llm_complete_json``, which records each call), backtests in memory,
    a GenerationCandidate per candidate and a Strategy (with a ``generated`` decision) per kept one.
    Returns None, changing nothing, when the run was claimed or finished before. When no provider
    answers validly, or the market has too few candles, the run is FAILED with the reasons.
    """
    with job_claimed(model=GenerationRun, pk=run_id) as run:
        if run is None:
            return None
        try:
            return _generate(run)
        except Interrupted:
            raise
        except Exception as error:  # stored for the user; the row must not stay RUNNING
            logger.exception("Generation run %s failed", run_id)
            return job_fail(job=run, error=f"{type(error).__name__}: {error}")


def _generate(run: GenerationRun) -> GenerationRun:
    window = selectors.candle_window(
        instrument=run.instrument,
        timeframe=run.timeframe,
        warmup_bars=0,
        newest=settings.GENERATION_WINDOW_BARS,
    )
    holdout_bars = int(window.bars * settings.GENERATION_HOLDOUT_FRACTION)
    if holdout_bars < MIN_HOLDOUT_BARS:
        return job_fail(
            job=run,
            error=f"{window.bars} {run.timeframe} candles give a holdout of {holdout_bars} bars; "
            f"at least {MIN_HOLDOUT_BARS} are needed",
        )
    context = market_context(
        instrument=run.instrument, timeframe=run.timeframe, count=run.count, owner=run.owner
    )
    GenerationRun.objects.filter(pk=run.pk).update(context=context)
    job_progress(job=run, progress=0.1)
    try:
        result = _ask(run, context)
    except LLMUnavailableError as error:
        GenerationRun.objects.filter(pk=run.pk).update(llm_failures=list(error.failures))
        return job_fail(job=run, error=str(error))
    GenerationRun.objects.filter(pk=run.pk).update(
        provider_used=result.provider,
        model=result.model,
        llm_status=result.status,
        llm_calls=list(result.call_ids),
        llm_failures=list(result.failures),
    )
    job_progress(job=run, progress=0.3)
    candidates = [candidate_document(c) for c in result.data["strategies"]]
    outcomes = _judge(run, candidates, result.provider)
    kept = [c.strategy.strategy_id for c in outcomes if c.outcome == CandidateOutcome.KEPT]
    return job_complete(
        job=run,
        summary={"candidates": len(outcomes), "kept": len(kept), "kept_strategy_ids": kept},
    )


def _ask(run: GenerationRun, context: dict[str, Any]) -> LLMResult:
    return llm_complete_json(
        purpose="strategy_generation",
        template=TEMPLATE,
        template_version=TEMPLATE_VERSION,
        system=SYSTEM,
        context=context,
        instructions=INSTRUCTIONS,
        schema=answer_schema(run.count),
        validate=functools.partial(validate_answer, count=run.count),
        provider=run.provider_requested or None,
        offline_fallback=offline_candidates,
    )


def market_context(
    *, instrument: Instrument, timeframe: str, count: int, owner: ownership.User | None
) -> dict[str, Any]:
    """What the model is told, as data: the newest indicator readings, the regime, signals and
    confirmed patterns of the newest CONTEXT_BARS bars, and the market's active strategies that the
    run's ``owner`` may see (another user's rules are never sent on their behalf)."""
    frame = market.candles_frame(instrument=instrument, timeframe=timeframe, limit=CONTEXT_BARS)
    insights = analyse(frame, parse_timeframe(timeframe).duration.total_seconds())
    patterns = market.recent_patterns(frame)
    return {
        "symbol": instrument.symbol,
        "exchange": instrument.exchange,
        "timeframe": timeframe,
        "count": count,
        "last_candle": insights.last_time.isoformat(),
        "last_close": insights.last_close,
        "indicators": insights.indicators,
        "regime": insights.regime,
        "signals": [
            {"source": s.source, "direction": s.direction, "reason": s.reason} for s in insights.signals
        ],
        "recent_patterns": [
            {"pattern": p["pattern"], "direction": p["direction"], "confidence": round(p["confidence"], 2)}
            for p in patterns[-10:]
        ],
        "active_strategies": selectors.active_strategy_summaries(
            instrument=instrument, timeframe=timeframe, user=owner
        ),
    }


def _judge(run: GenerationRun, candidates: list[dict[str, Any]], provider: str) -> list[GenerationCandidate]:
    """De-duplicate (against the strategies the run's owner may see), backtest (train, then holdout)
    and keep or reject each candidate, in order."""
    versions = selectors.market_versions(instrument=run.instrument, timeframe=run.timeframe, user=run.owner)
    seen = {document_key(parameters=v.parameters, rules=v.rules) for v in versions}
    warmup = max(documents.warmup_bars(c["rules"], [c["parameters"]]) for c in candidates)
    window = selectors.candle_window(
        instrument=run.instrument,
        timeframe=run.timeframe,
        warmup_bars=warmup,
        newest=settings.GENERATION_WINDOW_BARS,
    )
    train, holdout = split_window(window, settings.GENERATION_HOLDOUT_FRACTION)
    stored, evaluated = [], []
    for index, candidate in enumerate(candidates):
        key = document_key(parameters=candidate["parameters"], rules=candidate["rules"])
        if key in seen:
            stored.append(_reject(run, index, candidate, "duplicate: the same rules and parameters as an "
                                  "existing strategy of this market or an earlier candidate"))  # fmt: skip
        else:
            seen.add(key)
            evaluated.append((index, candidate, _evidence(run, candidate, train, holdout)))
        job_progress(job=run, progress=0.3 + 0.6 * (index + 1) / len(candidates))
    # Every candidate backtested counts, kept or not, before any is judged: each is deflated by all.
    family = selectors.generation_family(instrument=run.instrument, timeframe=run.timeframe)
    trials_record(
        family=family,
        source=TrialSource.CANDIDATE,
        records=[
            TrialRecord(f"candidate:{run.pk}:{index}", candidate["parameters"], evidence.moments)
            for index, candidate, evidence in evaluated
            if evidence.moments is not None
        ],
        owner=run.owner,
    )
    for index, candidate, evidence in evaluated:
        stored.append(_decide(run, index, candidate, evidence, family, provider))
    return sorted(stored, key=lambda candidate: candidate.index)


def split_window(window: CandleWindow, holdout_fraction: float) -> tuple[CandleWindow, CandleWindow]:
    """The window's earlier bars for training and its later ``holdout_fraction`` for the holdout, each
    with the same warm-up bars in front (the holdout's are the training window's last bars)."""
    holdout_bars = int(window.bars * holdout_fraction)
    split = len(window.frame) - holdout_bars
    train = CandleWindow(window.frame.iloc[:split], window.first)
    holdout = CandleWindow(window.frame.iloc[split - window.first :], window.first)
    return train, holdout


def _metrics(report: BacktestReport) -> dict[str, Any]:
    metrics = report.metrics()
    return {key: metrics[key] for key in EVALUATION_METRICS}


def _backtest(run: GenerationRun, candidate: Mapping[str, Any], window: CandleWindow) -> BacktestReport:
    # Unsaved rows: strategy_report reads only their fields, and nothing is stored unless kept.
    strategy = Strategy(instrument=run.instrument, timeframe=run.timeframe)
    version = StrategyVersion(parameters=candidate["parameters"], rules=candidate["rules"])
    return strategy_report(
        strategy=strategy,
        version=version,
        window=window,
        initial_capital=float(DEFAULT_CAPITAL),
        commission=DEFAULT_COMMISSION,
        slippage=0.0,
    )


@dataclass(frozen=True)
class _Evidence:
    """A candidate's training and holdout metrics and its holdout's return moments, or why the engine
    refused it."""

    train_metrics: dict[str, Any] | None = None
    holdout_metrics: dict[str, Any] | None = None
    moments: ReturnMoments | None = None
    error: str | None = None


def _evidence(
    run: GenerationRun, candidate: Mapping[str, Any], train: CandleWindow, holdout: CandleWindow
) -> _Evidence:
    try:
        train_metrics = _metrics(_backtest(run, candidate, train))
        report = _backtest(run, candidate, holdout)
    except ValueError as error:  # RuleError and BacktestError: the engine refused it
        return _Evidence(error=str(error))
    return _Evidence(train_metrics, _metrics(report), equity_moments(report.equity_curve.equity))


def _decide(
    run: GenerationRun,
    index: int,
    candidate: dict[str, Any],
    evidence: _Evidence,
    family: selectors.Family,
    provider: str,
) -> GenerationCandidate:
    """Keep a candidate whose holdout beats buy-and-hold and the Sharpe minimum, and whose holdout
    Sharpe ratio, deflated by every trial of the market's generation family, reaches
    ``STRATEGY_MIN_DEFLATED_SHARPE``; reject it otherwise, with the numbers."""
    if evidence.error is not None or evidence.moments is None or evidence.holdout_metrics is None:
        return _reject(run, index, candidate, f"the backtest failed: {evidence.error}")
    tests = deflated_tests(family=family, moments=evidence.moments)
    numbers = {
        "train_metrics": evidence.train_metrics,
        "holdout_metrics": evidence.holdout_metrics,
        "robustness": gate_numbers(tests),
    }
    verdict = holdout_verdict(evidence.holdout_metrics, settings.GENERATION_MIN_SHARPE)
    if verdict is None and (luck := deflation_verdict(deflated_sharpe=tests.deflated_sharpe)):
        verdict = f"the holdout may be luck ({tests.trials} trials in the family): {luck}"
    if verdict is not None:
        return _reject(run, index, candidate, verdict, **numbers)
    return _keep(run, index, candidate, provider, **numbers)


def generation_actor(run: GenerationRun) -> str:
    """Who a run's decisions name: the user who asked, or the job that did (the daily update)."""
    if run.owner is not None:
        return run.owner.get_username()
    return DAILY_UPDATE if run.trigger == JobTrigger.DAILY_UPDATE else GENERATION


def holdout_verdict(metrics: Mapping[str, Any], min_sharpe: float) -> str | None:
    """Why the holdout results reject a candidate, or None when it beats buy-and-hold and the Sharpe."""
    total, hold, sharpe = (
        metrics["total_return_pct"],
        metrics["buy_and_hold_return_pct"],
        metrics["sharpe_ratio"],
    )
    sharpe_text = "n/a" if sharpe is None else f"{sharpe:.2f}"
    numbers = f"holdout return {total:+.2f}% vs buy-and-hold {hold:+.2f}%, Sharpe {sharpe_text}"
    if total <= hold:
        return f"does not beat buy-and-hold on the holdout: {numbers}"
    if sharpe is None or sharpe < min_sharpe:
        return f"holdout Sharpe below the minimum of {min_sharpe:g}: {numbers}"
    return None


def _reject(
    run: GenerationRun, index: int, candidate: Mapping[str, Any], reason: str, **numbers: Any
) -> GenerationCandidate:
    holdout = numbers.get("holdout_metrics")
    return GenerationCandidate.objects.create(
        run=run,
        index=index,
        name=candidate["name"],
        document=dict(candidate),
        outcome=CandidateOutcome.REJECTED,
        reason=reason,
        holdout_buy_and_hold_pct=holdout and holdout["buy_and_hold_return_pct"],
        **numbers,
    )


def _keep(
    run: GenerationRun,
    index: int,
    candidate: Mapping[str, Any],
    provider: str,
    *,
    train_metrics: dict[str, Any],
    holdout_metrics: dict[str, Any],
    robustness: dict[str, Any],
) -> GenerationCandidate:
    deploy = settings.GENERATION_AUTO_DEPLOY
    status = StrategyStatus.ACTIVE if deploy else StrategyStatus.DRAFT
    sharpe = holdout_metrics["sharpe_ratio"]
    reason = (
        f"holdout return {holdout_metrics['total_return_pct']:+.2f}% beats buy-and-hold "
        f"{holdout_metrics['buy_and_hold_return_pct']:+.2f}% with Sharpe {sharpe:.2f} "
        f"(minimum {settings.GENERATION_MIN_SHARPE:g}), deflated Sharpe ratio "
        f"{robustness['deflated_sharpe']:.3f} over {robustness['trials']} trials "
        f"(minimum {settings.STRATEGY_MIN_DEFLATED_SHARPE:g}); stored as {status}"
    )
    actor = generation_actor(run)
    with transaction.atomic():
        strategy = strategy_create(
            name=candidate["name"],
            type=candidate["type"],
            instrument=run.instrument,
            timeframe=run.timeframe,
            parameters=candidate["parameters"],
            indicators=candidate["indicators"],
            rules=candidate["rules"],
            source=StrategySource.TEMPLATE if provider == OFFLINE else StrategySource.LLM,
            owner=run.owner,
        )
        decision_record(
            strategy,
            DecisionKind.GENERATED,
            f"generated by {provider} (generation run {run.pk}): {reason}",
            {
                "generation_run": run.pk,
                "provider": provider,
                "train": train_metrics,
                "holdout": holdout_metrics,
                "robustness": robustness,
                "warnings": documents.document_warnings(
                    parameters=candidate["parameters"], rules=candidate["rules"]
                ),
            },
            actor=actor,
            update_run=run.update_run,
        )
        if deploy:  # the gate was the deflated holdout above; a new strategy has no backtest yet
            why = f"GENERATION_AUTO_DEPLOY: its holdout passed the deflation gate (generation run {run.pk})"
            strategy_status_set(strategy, status, why, robustness, actor=actor, update_run=run.update_run)
            strategy.save(update_fields=["status", "updated_at"])
        return GenerationCandidate.objects.create(
            run=run,
            index=index,
            name=candidate["name"],
            document=dict(candidate),
            outcome=CandidateOutcome.KEPT,
            reason=reason,
            train_metrics=train_metrics,
            holdout_metrics=holdout_metrics,
            holdout_buy_and_hold_pct=holdout_metrics["buy_and_hold_return_pct"],
            robustness=robustness,
            strategy=strategy,
        )
